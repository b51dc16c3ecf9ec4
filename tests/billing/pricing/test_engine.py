"""price_charge's common contract (per-unit, minimums, inputs, exactness) and price_grouped."""

from decimal import Decimal

import pytest

from billing.pricing import BreakdownItem, ChargeResult, PriceValidationError, PricingInputError, price_charge
from billing.pricing import price_grouped as grouped

D = Decimal

PER_UNIT = {"model": "per_unit", "unit_amount": "0.002"}


def test_per_unit():
    result = price_charge(PER_UNIT, D(1500))
    assert result == ChargeResult(
        amount=D("3.000"),
        breakdown=[BreakdownItem("units", None, D(1500), D("0.002"), D(0), D("3.000"))],
        minimum_true_up=D(0),
    )


def test_per_unit_zero_usage_costs_nothing():
    assert price_charge(PER_UNIT, D(0)).amount == D(0)


def test_per_unit_fractional_quantity_is_exact():
    assert price_charge({"model": "per_unit", "unit_amount": "0.023"}, D("12.345")).amount == D("0.283935")


def test_int_quantity_is_accepted():
    assert price_charge(PER_UNIT, 1500).amount == D("3.000")


@pytest.mark.parametrize(
    ("price", "quantity", "true_up"),
    [
        ({**PER_UNIT, "minimum_amount": "10"}, "1500", "7.000"),  # 3.000 billed, minimum 10
        ({**PER_UNIT, "minimum_amount": "10"}, "5000", "0"),  # exactly the minimum
        ({**PER_UNIT, "minimum_amount": "10"}, "6000", "0"),  # above it: no negative true-up
        ({**PER_UNIT, "minimum_amount": "10"}, "0", "10"),
        ({**PER_UNIT, "minimum_amount": None}, "0", "0"),
        (PER_UNIT, "0", "0"),
    ],
)
def test_minimum_true_up_is_reported_apart(price, quantity, true_up):
    result = price_charge(price, D(quantity))
    assert result.minimum_true_up == D(true_up)
    # Never folded into the amount.
    assert result.amount == D(quantity) * D("0.002")


def test_minimum_applies_to_every_model():
    package = {"model": "package", "package_size": "100", "package_amount": "1", "minimum_amount": "5"}
    assert price_charge(package, D(150)).minimum_true_up == D(3)
    percentage = {"model": "percentage", "rate": "10", "minimum_amount": "2"}
    assert price_charge(percentage, D(5), event_values=[D(5)]).minimum_true_up == D("1.5")
    volume = {"model": "volume", "tiers": [{"up_to": None, "unit_amount": "1"}], "minimum_amount": "4"}
    assert price_charge(volume, D(1)).minimum_true_up == D(3)


def test_negative_quantity_is_an_error():
    with pytest.raises(PricingInputError) as info:
        price_charge(PER_UNIT, D("-1"))
    assert info.value.code == "negative_quantity"


@pytest.mark.parametrize("quantity", [D("NaN"), D("Infinity")])
def test_non_finite_quantity_is_an_error(quantity):
    with pytest.raises(PricingInputError) as info:
        price_charge(PER_UNIT, quantity)
    assert info.value.code == "invalid_quantity"


@pytest.mark.parametrize("quantity", [1.5, "1.5", None, True])
def test_quantity_must_be_decimal(quantity):
    with pytest.raises(TypeError):
        price_charge(PER_UNIT, quantity)


def test_results_past_the_exact_context_are_refused_not_rounded():
    # 20 integer digits of price times a 40-digit quantity needs more than 50 digits.
    price = {"model": "per_unit", "unit_amount": "12345678901234567890.123456789012"}
    with pytest.raises(PricingInputError) as info:
        price_charge(price, D("1234567890123456789012345678901234567890.1"))
    assert info.value.code == "precision_exceeded"


def test_large_realistic_values_stay_exact():
    # A billion GB-seconds at a 12-decimal unit price: 16666.667 + 0.123 * 0.000016666667.
    price = {"model": "per_unit", "unit_amount": "0.000016666667"}
    assert price_charge(price, D("1000000000.123")).amount == D("16666.667002050000041")


def test_engine_leaves_the_callers_decimal_context_alone():
    import decimal

    before = decimal.getcontext().prec
    price_charge(PER_UNIT, D(1))
    assert decimal.getcontext().prec == before


# -- grouped pricing -------------------------------------------------------------------------------

EU = {"model": "per_unit", "unit_amount": "0.02"}
DEFAULT = {"model": "graduated", "tiers": [{"up_to": "100", "unit_amount": "0"}, {"up_to": None, "unit_amount": "1"}]}


def test_each_group_priced_separately_with_fallback_to_default():
    results = grouped({"eu": EU}, DEFAULT, {"eu": D(1000), "us": D(150), "ap": D(50)})
    assert list(results) == ["eu", "us", "ap"]
    assert results["eu"].amount == D("20.00")
    assert results["us"].amount == D(50)  # its own 100 free units, not shared with "ap"
    assert results["ap"].amount == D(0)


def test_grouped_tiers_are_per_group_not_pooled():
    results = grouped({}, DEFAULT, {"a": D(100), "b": D(100)})
    assert sum(r.amount for r in results.values()) == D(0)
    pooled = price_charge(DEFAULT, D(200)).amount
    assert pooled == D(100)


def test_groups_without_usage_are_not_priced():
    assert grouped({"eu": EU}, DEFAULT, {}) == {}


def test_group_without_price_and_without_default():
    with pytest.raises(PricingInputError) as info:
        grouped({"eu": EU}, None, {"eu": D(1), "us": D(1)})
    assert info.value.code == "no_price_for_group"
    assert grouped({"eu": EU}, None, {"eu": D(1)})["eu"].amount == D("0.02")


def test_every_grouped_price_is_validated_even_unused():
    with pytest.raises(PriceValidationError) as info:
        grouped({"eu": EU, "us": {"model": "per_unit", "unit_amount": 1}}, DEFAULT, {"eu": D(1)})
    assert (info.value.code, info.value.path) == ("not_a_decimal_string", "prices_by_group['us'].unit_amount")
    with pytest.raises(PriceValidationError) as info:
        grouped({}, {"model": "nope"}, {})
    assert (info.value.code, info.value.path) == ("unknown_model", "default_price.model")


def test_grouped_percentage_takes_event_values_per_group():
    percentage = {"model": "percentage", "rate": "10", "fixed_amount": "1"}
    results = grouped(
        {"card": percentage},
        EU,
        {"card": D(30), "wire": D(10)},
        event_values_by_group={"card": [D(10), D(20)]},
    )
    assert results["card"].amount == D(5)
    assert results["wire"].amount == D("0.20")


def test_grouped_minimum_is_per_group():
    price = {**EU, "minimum_amount": "1"}
    results = grouped({}, price, {"a": D(10), "b": D(100)})
    assert results["a"].minimum_true_up == D("0.80")
    assert results["b"].minimum_true_up == D(0)
