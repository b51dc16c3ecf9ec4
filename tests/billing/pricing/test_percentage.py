"""Percentage pricing: rate and fixed fee per paid event, free allowances consumed in order,
per-event bounds including the fixed fee."""

from decimal import Decimal

import pytest

from billing.pricing import BreakdownItem, PricingInputError, price_charge

D = Decimal


def price(**overrides) -> dict:
    base = {
        "model": "percentage",
        "rate": "2.9",
        "fixed_amount": "0.30",
        "free_events": 0,
        "free_amount": "0",
        "min_amount_per_event": None,
        "max_amount_per_event": None,
    }
    base.update(overrides)
    return base


def charge(values: list[str], **overrides):
    events = [D(v) for v in values]
    return price_charge(price(**overrides), sum(events, D(0)), event_values=events)


def by_label(result) -> dict[str, BreakdownItem]:
    return {item.label: item for item in result.breakdown}


def test_rate_plus_fixed_fee_per_event():
    # 2.9 % of 100 + 0.30, and 2.9 % of 10 + 0.30.
    result = charge(["100", "10"])
    assert result.amount == D("3.20") + D("0.59")
    assert result.amount == D("3.79")
    items = by_label(result)
    assert items["rate"].quantity == D(110)
    assert items["rate"].unit_amount == D("0.029")
    assert items["fixed_fee"].quantity == D(2)
    assert items["fixed_fee"].amount == D("0.60")


def test_no_events_cost_nothing():
    result = price_charge(price(), D(0), event_values=[])
    assert result.amount == D(0)
    assert [item.label for item in result.breakdown] == ["free_events", "rate", "fixed_fee", "per_event_bounds"]


def test_a_zero_value_event_still_pays_the_fixed_fee():
    assert charge(["0"]).amount == D("0.30")


def test_free_events_only():
    # The first two events are free whatever their value.
    result = charge(["1000", "1000", "100"], free_events=2)
    assert result.amount == D("2.90") + D("0.30")
    assert by_label(result)["free_events"].quantity == D(2)


def test_free_amount_only_covers_any_number_of_events():
    # free_events 0 means no event-count limit: the first 500 of value are free.
    result = charge(["100", "100", "100", "100", "100", "50"], rate="1", fixed_amount="0.10", free_amount="500")
    assert result.amount == D("0.50") + D("0.10")
    assert by_label(result)["free_events"].quantity == D(5)


def test_event_straddling_the_free_amount_is_charged_on_the_part_above():
    # 400 free, then 300 of which 100 are still free: charged on 200, and it is a paid event.
    result = charge(["400", "300"], rate="1", fixed_amount="0.10", free_amount="500")
    assert result.amount == D("2.00") + D("0.10")
    items = by_label(result)
    assert items["free_events"].quantity == D(1)
    assert items["rate"].quantity == D(200)
    assert items["fixed_fee"].quantity == D(1)


def test_event_exactly_using_up_the_free_amount_is_free_and_ends_the_window():
    result = charge(["500", "0", "10"], rate="1", fixed_amount="0.10", free_amount="500")
    # The 0-value event comes after the free value ran out, so it pays the fixed fee.
    assert result.amount == D("0.10") + D("0.10") + D("0.10")
    assert by_label(result)["free_events"].quantity == D(1)


def test_free_events_run_out_first():
    # Free value left over (400 of 500 used) does not help once the 3 free events are gone.
    result = charge(
        ["200", "100", "100", "50", "50"], rate="1.2", fixed_amount="0.10", free_events=3, free_amount="500"
    )
    assert result.amount == 2 * (D("0.60") + D("0.10"))


def test_free_amount_runs_out_first():
    # The second event straddles 500 (charged on 100); events 3 and 4 are paid in full even
    # though free events remain.
    result = charge(["400", "200", "10", "10"], rate="1", fixed_amount="0", free_events=10, free_amount="500")
    assert result.amount == D("1.00") + D("0.10") + D("0.10")
    items = by_label(result)
    assert items["free_events"].quantity == D(1)
    assert items["rate"].quantity == D(120)


def test_free_allowance_covers_everything():
    result = charge(["100", "100"], free_events=5, free_amount="1000")
    assert result.amount == D(0)
    assert by_label(result)["fixed_fee"].quantity == D(0)


def test_events_are_consumed_in_the_order_given():
    # Same events, other order, other total: order is part of the input.
    first = charge(["1000", "1"], free_events=1)
    second = charge(["1", "1000"], free_events=1)
    assert first.amount == D("0.029") + D("0.30")
    assert second.amount == D("29.00") + D("0.30")


def test_min_per_event_includes_the_fixed_fee():
    # 1 % of 10 + 0.10 = 0.20, raised to the 0.50 minimum; 1 % of 100 + 0.10 = 1.10 unchanged.
    result = charge(["10", "100"], rate="1", fixed_amount="0.10", min_amount_per_event="0.50")
    assert result.amount == D("0.50") + D("1.10")
    bounds = by_label(result)["per_event_bounds"]
    assert (bounds.quantity, bounds.amount) == (D(1), D("0.30"))


def test_max_per_event_includes_the_fixed_fee():
    # 1 % of 1000 + 0.10 = 10.10, capped at 5.00.
    result = charge(["1000", "10"], rate="1", fixed_amount="0.10", max_amount_per_event="5.00")
    assert result.amount == D("5.00") + D("0.20")
    assert by_label(result)["per_event_bounds"].amount == D("-5.10")


def test_bounds_do_not_apply_to_free_events():
    result = charge(["10", "10"], rate="1", free_events=1, min_amount_per_event="1.00")
    assert result.amount == D("1.00")


def test_bounds_apply_to_a_straddling_event():
    # Charged on 1 of its 101: 0.01, raised to the 0.25 minimum.
    result = charge(["100", "101"], rate="1", fixed_amount="0", free_amount="200", min_amount_per_event="0.25")
    assert result.amount == D("0.25")


def test_breakdown_sums_to_the_total_and_each_item_is_consistent():
    result = charge(
        ["5", "700", "30", "2"],
        rate="3",
        fixed_amount="0.25",
        free_events=1,
        min_amount_per_event="0.40",
        max_amount_per_event="10",
    )
    assert sum(item.amount for item in result.breakdown) == result.amount
    for item in result.breakdown:
        assert item.amount == item.quantity * item.unit_amount + item.flat_amount


def test_percentage_needs_event_values():
    with pytest.raises(PricingInputError) as info:
        price_charge(price(), D(100))
    assert info.value.code == "event_values_required"


def test_quantity_must_be_the_sum_of_event_values():
    with pytest.raises(PricingInputError) as info:
        price_charge(price(), D(100), event_values=[D(60), D(30)])
    assert info.value.code == "event_values_mismatch"


def test_negative_event_value_is_refused():
    with pytest.raises(PricingInputError) as info:
        price_charge(price(), D(0), event_values=[D(10), D(-10)])
    assert info.value.code == "negative_event_value"


def test_float_event_value_is_refused():
    with pytest.raises(TypeError):
        price_charge(price(), D(1), event_values=[1.0])


def test_other_models_refuse_event_values():
    with pytest.raises(PricingInputError) as info:
        price_charge({"model": "per_unit", "unit_amount": "1"}, D(1), event_values=[D(1)])
    assert info.value.code == "event_values_unexpected"
