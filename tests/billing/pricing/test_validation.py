"""validate_price: every refusal has a stable code and points at the offending value."""

import copy
from decimal import Decimal

import pytest

from billing.pricing import PriceValidationError, price_charge, validate_price

D = Decimal

GRADUATED = {
    "model": "graduated",
    "tiers": [
        {"up_to": "1000", "unit_amount": "0", "flat_amount": "0"},
        {"up_to": "5000", "unit_amount": "0.02", "flat_amount": "1.00"},
        {"up_to": None, "unit_amount": "0.01", "flat_amount": "0"},
    ],
}
PERCENTAGE = {
    "model": "percentage",
    "rate": "2.9",
    "fixed_amount": "0.30",
    "free_events": 0,
    "free_amount": "0",
    "min_amount_per_event": None,
    "max_amount_per_event": None,
}


def refused(price) -> PriceValidationError:
    with pytest.raises(PriceValidationError) as info:
        validate_price(price)
    return info.value


def with_changes(base: dict, **changes) -> dict:
    price = copy.deepcopy(base)
    price.update(changes)
    return price


# -- accepted documents and normalization --------------------------------------------------


def test_normalizes_per_unit_with_minimum_key():
    assert validate_price({"model": "per_unit", "unit_amount": "0.002"}) == {
        "model": "per_unit",
        "unit_amount": "0.002",
        "minimum_amount": None,
    }


def test_normalizes_tiers_filling_the_missing_amount_with_zero():
    price = {"model": "volume", "tiers": [{"up_to": "10", "flat_amount": "5"}, {"up_to": None, "unit_amount": "1"}]}
    assert validate_price(price) == {
        "model": "volume",
        "tiers": [
            {"up_to": "10", "unit_amount": "0", "flat_amount": "5"},
            {"up_to": None, "unit_amount": "1", "flat_amount": "0"},
        ],
        "minimum_amount": None,
    }


def test_normalizes_package_defaults():
    assert validate_price({"model": "package", "package_size": "1000", "package_amount": "5.00"}) == {
        "model": "package",
        "package_size": "1000",
        "package_amount": "5.00",
        "free_units": "0",
        "minimum_amount": None,
    }


def test_normalizes_percentage_defaults():
    assert validate_price({"model": "percentage", "rate": "1.2", "minimum_amount": "10"}) == {
        "model": "percentage",
        "rate": "1.2",
        "fixed_amount": "0",
        "free_events": 0,
        "free_amount": "0",
        "min_amount_per_event": None,
        "max_amount_per_event": None,
        "minimum_amount": "10",
    }


def test_normalizes_spelling_but_keeps_trailing_zeros():
    normalized = validate_price({"model": "per_unit", "unit_amount": "05.50", "minimum_amount": "-0"})
    assert normalized["unit_amount"] == "5.50"
    assert normalized["minimum_amount"] == "0"


@pytest.mark.parametrize("price", [GRADUATED, PERCENTAGE, {"model": "per_unit", "unit_amount": "1"}])
def test_validation_is_idempotent(price):
    once = validate_price(price)
    assert validate_price(once) == once


def test_validation_does_not_mutate_its_input():
    price = copy.deepcopy(GRADUATED)
    validate_price(price)
    assert price == GRADUATED


def test_fractional_tier_bounds_are_allowed():
    # Quantities may be GB or hours, so bounds may be fractional too.
    price = {"model": "graduated", "tiers": [{"up_to": "0.5", "unit_amount": "1"}, {"up_to": None, "unit_amount": "2"}]}
    assert validate_price(price)["tiers"][0]["up_to"] == "0.5"


def test_a_single_unbounded_tier_is_valid():
    validate_price({"model": "volume", "tiers": [{"up_to": None, "unit_amount": "1"}]})


# -- refusals: code and path ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "code", "path"),
    [
        (["model", "per_unit"], "not_an_object", ""),
        ("per_unit", "not_an_object", ""),
        ({}, "missing_field", "model"),
        ({"model": "tiered"}, "unknown_model", "model"),
        ({"model": None}, "unknown_model", "model"),
        ({"model": "per_unit"}, "missing_field", "unit_amount"),
        ({"model": "graduated"}, "missing_field", "tiers"),
        ({"model": "package", "package_size": "10"}, "missing_field", "package_amount"),
        ({"model": "percentage"}, "missing_field", "rate"),
        ({"model": "per_unit", "unit_amount": "1", "currency": "USD"}, "unknown_field", "currency"),
        ({"model": "per_unit", "unit_amount": "1", "tiers": []}, "unknown_field", "tiers"),
    ],
)
def test_shape_errors(price, code, path):
    error = refused(price)
    assert (error.code, error.path) == (code, path)


@pytest.mark.parametrize(
    "value",
    [
        0.002,  # a float has already lost the exact value
        2,  # JSON numbers are refused for amounts, even whole ones
        True,
        None,
        "",
        "abc",
        "1e3",  # exponent notation
        "1.",
        ".5",
        " 1",
        "+1",
        "NaN",
        "Infinity",
        "1,5",
        "\u0661\u0660\u0660",  # Arabic-Indic digits, which Decimal() reads as 100
        "\uff11\uff10",  # fullwidth digits
        "1\n",  # a regex anchored with $ lets a trailing newline through
    ],
)
def test_amounts_must_be_plain_decimal_strings(value):
    error = refused({"model": "per_unit", "unit_amount": value})
    assert (error.code, error.path) == ("not_a_decimal_string", "unit_amount")


@pytest.mark.parametrize("value", ["1" * 21, "0." + "1" * 13])
def test_amounts_outside_the_supported_digits_are_refused(value):
    error = refused({"model": "per_unit", "unit_amount": value})
    assert (error.code, error.path) == ("decimal_out_of_range", "unit_amount")


def test_leading_zeros_do_not_count_as_digits():
    validate_price({"model": "per_unit", "unit_amount": "0" * 30 + "1." + "0" * 12})


@pytest.mark.parametrize(
    ("price", "path"),
    [
        ({"model": "per_unit", "unit_amount": "-0.01"}, "unit_amount"),
        ({"model": "per_unit", "unit_amount": "1", "minimum_amount": "-5"}, "minimum_amount"),
        ({"model": "package", "package_size": "10", "package_amount": "-1"}, "package_amount"),
        (with_changes(PERCENTAGE, fixed_amount="-0.30"), "fixed_amount"),
        (with_changes(PERCENTAGE, free_amount="-1"), "free_amount"),
        (with_changes(PERCENTAGE, min_amount_per_event="-1"), "min_amount_per_event"),
        (with_changes(PERCENTAGE, max_amount_per_event="-1"), "max_amount_per_event"),
    ],
)
def test_negative_amounts(price, path):
    error = refused(price)
    assert (error.code, error.path) == ("negative_amount", path)


def test_negative_tier_amounts_point_into_the_tier():
    price = copy.deepcopy(GRADUATED)
    price["tiers"][1]["flat_amount"] = "-1"
    error = refused(price)
    assert (error.code, error.path) == ("negative_amount", "tiers[1].flat_amount")


def test_negative_free_units_and_free_events():
    error = refused({"model": "package", "package_size": "10", "package_amount": "1", "free_units": "-1"})
    assert (error.code, error.path) == ("negative_quantity", "free_units")
    error = refused(with_changes(PERCENTAGE, free_events=-1))
    assert (error.code, error.path) == ("negative_quantity", "free_events")


@pytest.mark.parametrize("value", ["3", 3.0, True, None])
def test_free_events_must_be_a_json_integer(value):
    error = refused(with_changes(PERCENTAGE, free_events=value))
    assert (error.code, error.path) == ("not_an_integer", "free_events")


def test_tiers_must_be_a_non_empty_list():
    assert refused({"model": "graduated", "tiers": []}).code == "tiers_empty"
    error = refused({"model": "volume", "tiers": {"up_to": None, "unit_amount": "1"}})
    assert (error.code, error.path) == ("not_a_list", "tiers")
    error = refused({"model": "volume", "tiers": ["1"]})
    assert (error.code, error.path) == ("not_an_object", "tiers[0]")


@pytest.mark.parametrize(
    ("bounds", "path"),
    [
        (["1000", "1000", None], "tiers[1].up_to"),  # equal is not ascending
        (["1000", "999.99", None], "tiers[1].up_to"),
        (["0", None], "tiers[0].up_to"),  # the first tier starts at 0, so 0 contains nothing
        (["-5", None], "tiers[0].up_to"),
    ],
)
def test_tier_bounds_must_strictly_ascend_from_zero(bounds, path):
    price = {"model": "graduated", "tiers": [{"up_to": b, "unit_amount": "1"} for b in bounds]}
    error = refused(price)
    assert (error.code, error.path) == ("tiers_not_ascending", path)


def test_last_tier_must_be_unbounded():
    price = {"model": "graduated", "tiers": [{"up_to": "10", "unit_amount": "1"}, {"up_to": "20", "unit_amount": "1"}]}
    error = refused(price)
    assert (error.code, error.path) == ("last_tier_up_to_not_null", "tiers[1].up_to")


def test_only_the_last_tier_may_be_unbounded():
    price = {"model": "volume", "tiers": [{"up_to": None, "unit_amount": "1"}, {"up_to": None, "unit_amount": "2"}]}
    error = refused(price)
    assert (error.code, error.path) == ("tier_up_to_null_before_last", "tiers[0].up_to")


def test_tier_needs_up_to_and_an_amount():
    error = refused({"model": "volume", "tiers": [{"unit_amount": "1"}]})
    assert (error.code, error.path) == ("missing_field", "tiers[0].up_to")
    error = refused({"model": "volume", "tiers": [{"up_to": None}]})
    assert (error.code, error.path) == ("tier_without_amount", "tiers[0]")


def test_tier_bound_must_be_a_string():
    error = refused({"model": "volume", "tiers": [{"up_to": 1000, "unit_amount": "1"}, {"up_to": None}]})
    assert (error.code, error.path) == ("not_a_decimal_string", "tiers[0].up_to")


def test_unknown_tier_keys():
    error = refused({"model": "volume", "tiers": [{"up_to": None, "unit_amount": "1", "upto": "5"}]})
    assert (error.code, error.path) == ("unknown_field", "tiers[0].upto")


@pytest.mark.parametrize("size", ["0", "-10", "0.000"])
def test_package_size_must_be_positive(size):
    error = refused({"model": "package", "package_size": size, "package_amount": "5"})
    assert (error.code, error.path) == ("package_size_not_positive", "package_size")


def test_rate_must_not_be_negative():
    error = refused(with_changes(PERCENTAGE, rate="-0.1"))
    assert (error.code, error.path) == ("negative_rate", "rate")


def test_rate_is_a_percentage_of_at_most_100():
    error = refused(with_changes(PERCENTAGE, rate="200"))
    assert (error.code, error.path) == ("rate_above_100", "rate")
    assert error.message == "is a percentage of at most 100 (got '200')."
    assert refused(with_changes(PERCENTAGE, rate="100.000000000001")).code == "rate_above_100"
    assert validate_price(with_changes(PERCENTAGE, rate="100"))["rate"] == "100"


def test_min_must_not_exceed_max():
    error = refused(with_changes(PERCENTAGE, min_amount_per_event="2", max_amount_per_event="1.99"))
    assert (error.code, error.path) == ("min_above_max", "min_amount_per_event")
    # Equal bounds are a fixed price per paid event, which is legitimate.
    validate_price(with_changes(PERCENTAGE, min_amount_per_event="1", max_amount_per_event="1"))


def test_only_documented_fields_accept_null():
    error = refused(with_changes(PERCENTAGE, fixed_amount=None))
    assert (error.code, error.path) == ("not_a_decimal_string", "fixed_amount")


def test_error_carries_code_message_path_and_is_a_value_error():
    error = refused({"model": "per_unit", "unit_amount": 0.5})
    assert isinstance(error, ValueError)
    assert error.message
    assert str(error).startswith("unit_amount: ")
    assert error.code in str(error)


def test_price_charge_validates_before_pricing():
    with pytest.raises(PriceValidationError) as info:
        price_charge({"model": "per_unit", "unit_amount": 0.002}, D(10))
    assert info.value.code == "not_a_decimal_string"
