"""price_charge's common contract (per-unit, minimums, inputs, exactness)."""

from decimal import Decimal

import pytest

from billing.pricing import BreakdownItem, ChargeResult, PricingInputError, price_charge

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
