"""Properties that must hold for every valid price, checked with generated prices and usage."""

import math
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.pricing import price_charge, price_volume_cliffs, validate_price

D = Decimal
FAST = settings(max_examples=150, deadline=None)


def text(value: Decimal) -> str:
    # Plain notation: str() would give "0E-4" for a zero with places.
    return format(value, "f")


amounts = st.decimals(min_value=0, max_value=1000, places=4)
bounds = st.decimals(min_value=D("0.001"), max_value=100_000, places=3)
quantities = st.decimals(min_value=0, max_value=300_000, places=3)


@st.composite
def tier_lists(draw) -> list[dict]:
    upper_bounds = sorted(set(draw(st.lists(bounds, min_size=0, max_size=4))))
    tiers = [
        {"up_to": text(b), "unit_amount": text(draw(amounts)), "flat_amount": text(draw(amounts))} for b in upper_bounds
    ]
    tiers.append({"up_to": None, "unit_amount": text(draw(amounts)), "flat_amount": text(draw(amounts))})
    return tiers


@st.composite
def sane_volume_tiers(draw) -> list[dict]:
    """Volume tiers whose total never drops at a bound: unit prices may fall from tier to tier,
    but the next tier's flat fee makes up for it (flat[i+1] >= flat[i] + b * (unit[i] - unit[i+1]))."""
    tiers = draw(tier_lists())
    for below, above in pairwise(tiers):
        bound = D(below["up_to"])
        needed = D(below["flat_amount"]) + bound * (D(below["unit_amount"]) - D(above["unit_amount"]))
        above["flat_amount"] = text(max(needed, D(0)) + draw(amounts))
    return tiers


@st.composite
def package_prices(draw) -> dict:
    return {
        "model": "package",
        "package_size": text(draw(st.decimals(min_value=D("0.01"), max_value=10_000, places=2))),
        "package_amount": text(draw(amounts)),
        "free_units": text(draw(st.decimals(min_value=0, max_value=10_000, places=2))),
    }


@st.composite
def percentage_prices(draw) -> dict:
    minimum = draw(st.none() | amounts)
    maximum = draw(st.none() | amounts)
    if minimum is not None and maximum is not None and minimum > maximum:
        minimum, maximum = maximum, minimum
    return {
        "model": "percentage",
        "rate": text(draw(st.decimals(min_value=0, max_value=100, places=3))),
        "fixed_amount": text(draw(amounts)),
        "free_events": draw(st.integers(min_value=0, max_value=5)),
        "free_amount": text(draw(st.decimals(min_value=0, max_value=2000, places=2))),
        "min_amount_per_event": None if minimum is None else text(minimum),
        "max_amount_per_event": None if maximum is None else text(maximum),
    }


event_value_lists = st.lists(st.decimals(min_value=0, max_value=5000, places=2), max_size=12)


def any_price():
    return st.one_of(
        st.builds(lambda a: {"model": "per_unit", "unit_amount": text(a)}, amounts),
        tier_lists().map(lambda tiers: {"model": "graduated", "tiers": tiers}),
        tier_lists().map(lambda tiers: {"model": "volume", "tiers": tiers}),
        package_prices(),
        percentage_prices(),
    )


# -- graduated ------------------------------------------------------------------------------


@FAST
@given(tiers=tier_lists(), a=quantities, b=quantities)
def test_graduated_total_never_decreases_as_quantity_grows(tiers, a, b):
    price = {"model": "graduated", "tiers": tiers}
    low, high = sorted((a, b))
    assert price_charge(price, low).amount <= price_charge(price, high).amount


@FAST
@given(tiers=tier_lists(), quantity=quantities)
def test_graduated_total_is_the_sum_of_its_pieces(tiers, quantity):
    result = price_charge({"model": "graduated", "tiers": tiers}, quantity)
    assert result.amount == sum(item.amount for item in result.breakdown)
    # The pieces cover the quantity exactly once, each at its own tier's prices.
    assert sum(item.quantity for item in result.breakdown) == quantity
    for item in result.breakdown:
        tier = tiers[item.tier]
        assert item.unit_amount == D(tier["unit_amount"])
        assert item.flat_amount == D(tier["flat_amount"])
        assert item.amount == item.quantity * item.unit_amount + item.flat_amount
    # Touched tiers are a prefix of the tier list.
    assert [item.tier for item in result.breakdown] == list(range(len(result.breakdown)))


# -- volume ---------------------------------------------------------------------------------


@FAST
@given(tiers=sane_volume_tiers(), a=quantities, b=quantities)
def test_volume_total_never_decreases_when_the_tiers_have_no_cliff(tiers, a, b):
    price = {"model": "volume", "tiers": tiers}
    assert price_volume_cliffs(price) == []
    low, high = sorted((a, b))
    assert price_charge(price, low).amount <= price_charge(price, high).amount


@FAST
@given(tiers=tier_lists(), a=quantities, b=quantities)
def test_volume_is_monotonic_exactly_when_it_reports_no_cliff(tiers, a, b):
    # Volume pricing in general is NOT monotonic: crossing a bound re-prices every unit. The
    # engine names the bounds where that happens; everywhere else the total only grows.
    price = {"model": "volume", "tiers": tiers}
    cliffs = price_volume_cliffs(price)
    low, high = sorted((a, b))
    if not any(low <= cliff < high for cliff in cliffs):
        assert price_charge(price, low).amount <= price_charge(price, high).amount
    for cliff in cliffs:
        # Amounts have at most 7 decimals here, so any drop is >= 1e-7 and a 1e-12 step past
        # the bound (priced at most 1000 per unit) cannot make it up.
        just_past = cliff + D("1e-12")
        assert price_charge(price, just_past).amount < price_charge(price, cliff).amount


# -- package --------------------------------------------------------------------------------


@FAST
@given(price=package_prices(), quantity=quantities)
def test_package_charges_whole_started_blocks(price, quantity):
    result = price_charge(price, quantity)
    size = Fraction(D(price["package_size"]))
    billable = max(Fraction(quantity) - Fraction(D(price["free_units"])), Fraction(0))
    blocks = math.ceil(billable / size)
    assert result.amount == blocks * D(price["package_amount"])
    assert result.breakdown[1].quantity == blocks
    # The blocks cover the billable units, and one block fewer would not.
    assert blocks * size >= billable > (blocks - 1) * size or blocks == 0


# -- every model ----------------------------------------------------------------------------


@FAST
@given(tiers=tier_lists())
def test_zero_usage_costs_only_the_first_tier_flat_fee(tiers):
    for model in ("graduated", "volume"):
        result = price_charge({"model": model, "tiers": tiers}, D(0))
        assert result.amount == D(tiers[0]["flat_amount"])


@FAST
@given(unit=amounts, package=package_prices(), percentage=percentage_prices())
def test_zero_usage_costs_nothing_without_tiers(unit, package, percentage):
    assert price_charge({"model": "per_unit", "unit_amount": text(unit)}, D(0)).amount == 0
    assert price_charge(package, D(0)).amount == 0
    assert price_charge(percentage, D(0), event_values=[]).amount == 0


@FAST
@given(price=any_price(), quantity=quantities, values=event_value_lists)
def test_results_are_exact_decimals_and_pieces_add_up(price, quantity, values):
    if price["model"] == "percentage":
        quantity = sum(values, D(0))
        result = price_charge(price, quantity, event_values=values)
    else:
        result = price_charge(price, quantity)
    numbers = [result.amount, result.minimum_true_up]
    for item in result.breakdown:
        numbers += [item.quantity, item.unit_amount, item.flat_amount, item.amount]
        assert item.amount == item.quantity * item.unit_amount + item.flat_amount
    assert all(type(n) is Decimal and n.is_finite() for n in numbers)
    assert result.amount == sum(item.amount for item in result.breakdown)
    assert result.amount >= 0


@FAST
@given(price=percentage_prices(), values=event_value_lists)
def test_percentage_without_allowances_or_bounds_is_rate_plus_fixed_fee(price, values):
    price |= {"free_events": 0, "free_amount": "0", "min_amount_per_event": None, "max_amount_per_event": None}
    total = sum(values, D(0))
    expected = total * D(price["rate"]) / 100 + len(values) * D(price["fixed_amount"])
    assert price_charge(price, total, event_values=values).amount == expected


@FAST
@given(price=any_price())
def test_validation_is_idempotent(price):
    once = validate_price(price)
    assert validate_price(once) == once


@FAST
@given(price=any_price(), minimum=amounts, quantity=quantities, values=event_value_lists)
def test_minimum_true_up_tops_up_to_exactly_the_minimum(price, minimum, quantity, values):
    price = {**price, "minimum_amount": text(minimum)}
    if price["model"] == "percentage":
        result = price_charge(price, sum(values, D(0)), event_values=values)
    else:
        result = price_charge(price, quantity)
    assert result.minimum_true_up >= 0
    assert result.amount + result.minimum_true_up == max(result.amount, minimum)
