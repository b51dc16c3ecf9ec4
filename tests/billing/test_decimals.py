"""billing.decimals: the one reader of decimal text for API amounts (and, with wider bounds, price
documents): ASCII plain notation, finite, bounded to the columns the amounts go to."""

from decimal import Decimal

import pytest

from billing.decimals import AMOUNT_FRACTION_DIGITS, AMOUNT_INTEGER_DIGITS, decimal_parse
from billing.models.plan import PRICE_DIGITS
from core.errors import DomainError

D = Decimal


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("49.00", "49.00"),
        ("-1.5", "-1.5"),
        ("-0", "0"),
        ("-0.00", "0.00"),
        ("0007", "7"),
        ("9" * 14 + "." + "9" * 10, "9" * 14 + "." + "9" * 10),
    ],
)
def test_plain_decimal_text_is_read_exactly(text, value):
    parsed = decimal_parse(text, field="amount")
    assert str(parsed) == value


@pytest.mark.parametrize(
    "text",
    [
        "\u0661\u0660\u0660",  # Arabic-Indic digits: Decimal() reads 100
        "\u0967\u0966\u0966",  # Devanagari digits
        "\uff11\uff10\uff10",  # fullwidth digits
        "100\n",
        " 5",
        "5 ",
        "+5",
        "1e2",
        "1E+2",
        "1e999999",
        "NaN",
        "Infinity",
        "-Infinity",
        "",
        "1.",
        ".5",
        "1,5",
        "1_000",  # Decimal() reads 1000
        "0x10",
        "1" * 100_000 + "x",
    ],
)
def test_anything_else_is_refused(text):
    with pytest.raises(DomainError) as err:
        decimal_parse(text, field="amount_off")
    assert (err.value.code, err.value.message) == (
        "invalid_amount",
        'amount_off must be a decimal string such as "49.00".',
    )


@pytest.mark.parametrize("text", ["1" * 15, "99999999999999999999", "0." + "1" * 11, "-" + "9" * 15, "1" * 100_000])
def test_digits_beyond_the_money_columns_are_refused(text):
    with pytest.raises(DomainError) as err:
        decimal_parse(text, field="amount", code="invalid_credit")
    assert (err.value.code, err.value.message) == (
        "invalid_credit",
        "amount must have at most 14 digits before the decimal point and 10 after it.",
    )


def test_decimals_and_other_types_are_held_to_the_same_rules():
    assert decimal_parse(D("12.50"), field="amount") == D("12.50")
    for value in (D("Infinity"), D("NaN"), D("1E+20"), D("1E-11"), 1.5, 100, None, ["1"]):
        with pytest.raises(DomainError) as err:
            decimal_parse(value, field="amount")
        assert err.value.code == "invalid_amount"


def test_the_default_bounds_are_those_of_the_money_columns():
    assert AMOUNT_INTEGER_DIGITS == PRICE_DIGITS["max_digits"] - PRICE_DIGITS["decimal_places"]
    assert AMOUNT_FRACTION_DIGITS == PRICE_DIGITS["decimal_places"]
