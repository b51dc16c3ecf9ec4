"""Graduated and volume tiers: exact totals at, just past and between bounds, zero usage,
fractional quantities and the breakdown."""

from decimal import Decimal

import pytest

from billing.pricing import BreakdownItem, price_charge, price_volume_cliffs

D = Decimal

# 0-1000 free, 1000-5000 at 0.02 plus a 1.00 flat, beyond at 0.01 plus 3.00; first tier flat 2.50.
TIERS = [
    {"up_to": "1000", "unit_amount": "0", "flat_amount": "2.50"},
    {"up_to": "5000", "unit_amount": "0.02", "flat_amount": "1.00"},
    {"up_to": None, "unit_amount": "0.01", "flat_amount": "3.00"},
]
GRADUATED = {"model": "graduated", "tiers": TIERS}
VOLUME = {"model": "volume", "tiers": TIERS}


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", "2.50"),  # only the first tier's flat fee
        ("1", "2.50"),
        ("1000", "2.50"),  # exactly at up_to: still wholly in tier 1
        ("1001", "3.52"),  # one past: tier 2 touched, 1 unit at 0.02 + its flat 1.00
        ("5000", "83.50"),  # 2.50 + 4000 * 0.02 + 1.00
        ("5001", "86.51"),  # + 1 * 0.01 + 3.00
        ("10000", "136.50"),  # 83.50 + 5000 * 0.01 + 3.00
    ],
)
def test_graduated_totals(quantity, expected):
    assert price_charge(GRADUATED, D(quantity)).amount == D(expected)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", "2.50"),  # first tier's flat fee at zero usage
        ("1000", "2.50"),  # exactly at up_to: tier 1 prices everything
        ("1001", "21.02"),  # one past: all 1001 units at 0.02 + 1.00
        ("5000", "101.00"),
        ("5001", "53.01"),  # all 5001 at 0.01 + 3.00: the volume cliff
    ],
)
def test_volume_totals(quantity, expected):
    assert price_charge(VOLUME, D(quantity)).amount == D(expected)


def test_graduated_breakdown_lists_each_touched_tier():
    result = price_charge(GRADUATED, D(6000))
    assert result.breakdown == [
        BreakdownItem("tier", 0, D(1000), D(0), D("2.50"), D("2.50")),
        BreakdownItem("tier", 1, D(4000), D("0.02"), D("1.00"), D("81.00")),
        BreakdownItem("tier", 2, D(1000), D("0.01"), D("3.00"), D("13.00")),
    ]
    assert result.amount == D("96.50")


def test_graduated_at_a_bound_does_not_touch_the_next_tier():
    result = price_charge(GRADUATED, D(5000))
    assert [item.tier for item in result.breakdown] == [0, 1]


def test_graduated_zero_usage_breakdown_is_the_first_tier_only():
    result = price_charge(GRADUATED, D(0))
    assert result.breakdown == [BreakdownItem("tier", 0, D(0), D(0), D("2.50"), D("2.50"))]


def test_volume_breakdown_is_the_tier_the_total_falls_in():
    result = price_charge(VOLUME, D(1001))
    assert result.breakdown == [BreakdownItem("tier", 1, D(1001), D("0.02"), D("1.00"), D("21.02"))]


def test_graduated_fractional_quantity_splits_by_position():
    # 1000.5 GB: positions (0, 1000] are in tier 1 and (1000, 1000.5] in tier 2, which it touches.
    result = price_charge(GRADUATED, D("1000.5"))
    assert [(item.tier, item.quantity) for item in result.breakdown] == [(0, D(1000)), (1, D("0.5"))]
    assert result.amount == D("2.50") + D("0.5") * D("0.02") + D("1.00")
    assert result.amount == D("3.51")


def test_graduated_fractional_quantity_inside_the_first_tier():
    assert price_charge(GRADUATED, D("999.999")).amount == D("2.50")


def test_volume_fractional_quantity_just_past_a_bound_moves_tier():
    result = price_charge(VOLUME, D("1000.001"))
    assert result.breakdown[0].tier == 1
    assert result.amount == D("1000.001") * D("0.02") + D("1.00")


def test_fractional_tier_bounds():
    price = {
        "model": "graduated",
        "tiers": [{"up_to": "0.5", "unit_amount": "10"}, {"up_to": None, "unit_amount": "1"}],
    }
    assert price_charge(price, D("0.5")).amount == D("5.0")
    assert price_charge(price, D("0.75")).amount == D("5.25")


def test_unit_prices_below_a_cent_stay_exact():
    price = {"model": "graduated", "tiers": [{"up_to": "3", "unit_amount": "0.000001"}, {"up_to": None}]}
    price["tiers"][1]["unit_amount"] = "0.0000001"
    assert price_charge(price, D(7)).amount == D("0.0000034")


def test_amount_is_not_rounded_to_a_currency():
    price = {"model": "volume", "tiers": [{"up_to": None, "unit_amount": "0.0013"}]}
    assert price_charge(price, D(3)).amount == D("0.0039")


def test_single_tier_graduated_equals_per_unit():
    price = {"model": "graduated", "tiers": [{"up_to": None, "unit_amount": "0.002"}]}
    assert (
        price_charge(price, D(1234)).amount
        == price_charge({"model": "per_unit", "unit_amount": "0.002"}, D(1234)).amount
    )


# -- volume cliffs: the total may drop at a bound, and the engine can say where ---------------


def test_volume_total_can_drop_at_a_bound():
    # 1000 units at 1.00 cost 1000.00; 1001 units at 0.50 cost 500.50. This is the documented
    # volume behaviour (Stripe: "the total might decrease"), not an engine bug.
    price = {
        "model": "volume",
        "tiers": [{"up_to": "1000", "unit_amount": "1.00"}, {"up_to": None, "unit_amount": "0.50"}],
    }
    assert price_charge(price, D(1000)).amount == D("1000.00")
    assert price_charge(price, D(1001)).amount == D("500.50")
    assert price_volume_cliffs(price) == [D(1000)]


def test_volume_cliff_can_be_closed_with_a_flat_fee():
    # A flat fee on the cheaper tier of at least 1000 * (1.00 - 0.50) removes the drop.
    price = {
        "model": "volume",
        "tiers": [
            {"up_to": "1000", "unit_amount": "1.00"},
            {"up_to": None, "unit_amount": "0.50", "flat_amount": "500"},
        ],
    }
    assert price_volume_cliffs(price) == []
    assert price_charge(price, D(1000)).amount == D("1000.00")
    assert price_charge(price, D(1001)).amount == D("1000.50")


def test_volume_cliffs_reports_every_dropping_bound():
    # TIERS: at 1000, 2.50 -> 1000 * 0.02 + 1.00 = 21 (rises); at 5000, 101 -> 53 (drops).
    assert price_volume_cliffs(VOLUME) == [D(5000)]


def test_only_volume_prices_have_cliffs():
    assert price_volume_cliffs(GRADUATED) == []
    assert price_volume_cliffs({"model": "per_unit", "unit_amount": "1"}) == []
