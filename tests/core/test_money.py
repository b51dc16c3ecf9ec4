"""Money and rounding: currency minor units from babel, explicit half-up rounding, no floats."""

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, Inexact, localcontext
from fractions import Fraction

import pytest

from core.money import (
    LINE_ROUNDING,
    CurrencyMismatchError,
    Money,
    UnknownCurrencyError,
    exact_context,
    minor_units,
    round_money,
)

D = Decimal


def test_line_rounding_is_half_up():
    assert LINE_ROUNDING == ROUND_HALF_UP


@pytest.mark.parametrize(("currency", "digits"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("KWD", 3), ("BHD", 3)])
def test_minor_units_come_from_iso_4217(currency, digits):
    assert minor_units(currency) == digits


@pytest.mark.parametrize("currency", ["XYZ", "usd", "", "US"])
def test_minor_units_refuse_unknown_currency(currency):
    # babel itself answers 2 for an unknown code; we must not.
    with pytest.raises(UnknownCurrencyError):
        minor_units(currency)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        # JPY has no minor unit: half a yen rounds up, just under half rounds down.
        ("100.5", "JPY", "101"),
        ("100.49", "JPY", "100"),
        ("0.5", "JPY", "1"),
        # USD: cents, half-up at exactly .005.
        ("1.005", "USD", "1.01"),
        ("1.0049999", "USD", "1.00"),
        ("2.675", "USD", "2.68"),  # the classic float trap: float(2.675) rounds to 2.67
        ("0.125", "USD", "0.13"),  # half-even would give 0.12
        ("7", "USD", "7.00"),
        # KWD: fils, three places.
        ("1.0005", "KWD", "1.001"),
        ("1.00049", "KWD", "1.000"),
        ("12.3456", "KWD", "12.346"),
    ],
)
def test_round_money_per_currency_half_up(amount, currency, expected):
    result = round_money(D(amount), currency)
    assert result == D(expected)
    # The exponent is the currency's, so "7 USD" prints as 7.00.
    assert str(result) == expected


def test_round_money_half_up_is_away_from_zero_for_credits():
    # A credit line mirrors its debit line.
    assert round_money(D("-0.125"), "USD") == D("-0.13")
    assert round_money(D("-100.5"), "JPY") == D("-101")


def test_round_money_takes_the_mode_explicitly():
    assert round_money(D("0.125"), "USD", rounding=ROUND_HALF_EVEN) == D("0.12")
    assert round_money(D("0.129"), "USD", rounding=ROUND_DOWN) == D("0.12")


def test_round_money_refuses_float():
    with pytest.raises(TypeError):
        round_money(0.125, "USD")


def test_money_refuses_float_amount():
    with pytest.raises(TypeError):
        Money(1.5, "USD")


@pytest.mark.parametrize("amount", ["1.50", True, None])
def test_money_refuses_non_decimal_amounts(amount):
    with pytest.raises(TypeError):
        Money(amount, "USD")


@pytest.mark.parametrize("amount", [D("NaN"), D("Infinity"), D("-Infinity")])
def test_money_refuses_non_finite_amounts(amount):
    with pytest.raises(ValueError):
        Money(amount, "USD")


def test_money_accepts_int_as_exact_decimal():
    money = Money(3, "JPY")
    assert money.amount == D(3)
    assert isinstance(money.amount, Decimal)


@pytest.mark.parametrize("currency", ["XYZ", "usd", "", None])
def test_money_refuses_unknown_currency(currency):
    with pytest.raises(UnknownCurrencyError):
        Money(D(1), currency)


def test_money_is_immutable():
    money = Money(D(1), "USD")
    with pytest.raises(AttributeError):
        money.amount = D(2)


def test_add_and_subtract_same_currency_exactly():
    a = Money(D("0.1"), "USD")
    b = Money(D("0.2"), "USD")
    assert a + b == Money(D("0.3"), "USD")
    assert b - a == Money(D("0.1"), "USD")
    assert a - b == Money(D("-0.1"), "USD")


def test_add_keeps_full_precision_until_rounded():
    total = Money(D("0.004"), "USD") + Money(D("0.004"), "USD")
    assert total.amount == D("0.008")
    assert total.rounded() == Money(D("0.01"), "USD")


@pytest.mark.parametrize("operation", ["add", "sub", "lt", "le", "gt", "ge"])
def test_currency_mismatch_is_refused(operation):
    usd = Money(D(1), "USD")
    eur = Money(D(1), "EUR")
    calls = {
        "add": lambda: usd + eur,
        "sub": lambda: usd - eur,
        "lt": lambda: usd < eur,
        "le": lambda: usd <= eur,
        "gt": lambda: usd > eur,
        "ge": lambda: usd >= eur,
    }
    with pytest.raises(CurrencyMismatchError):
        calls[operation]()


def test_currency_mismatch_error_is_a_value_error():
    assert issubclass(CurrencyMismatchError, ValueError)


def test_equality_across_currencies_is_false_not_an_error():
    assert Money(D(1), "USD") != Money(D(1), "EUR")
    assert Money(D("1.0"), "USD") == Money(D("1.00"), "USD")
    assert hash(Money(D("1.0"), "USD")) == hash(Money(D("1.00"), "USD"))


def test_adding_a_plain_number_is_refused():
    with pytest.raises(TypeError):
        Money(D(1), "USD") + D(1)
    with pytest.raises(TypeError):
        0 + Money(D(1), "USD")


def test_multiply_by_decimal_or_int():
    money = Money(D("0.002"), "USD")
    assert money * D("1500") == Money(D("3.000"), "USD")
    assert 3 * money == Money(D("0.006"), "USD")


@pytest.mark.parametrize("factor", [1.5, Money(D(2), "USD"), "2", True])
def test_multiply_refuses_float_money_and_strings(factor):
    with pytest.raises(TypeError):
        Money(D(1), "USD") * factor


def test_negation_and_ordering():
    money = Money(D("2.50"), "EUR")
    assert -money == Money(D("-2.50"), "EUR")
    assert Money(D(1), "EUR") < money <= Money(D("2.5"), "EUR")
    assert money > Money.zero("EUR")
    assert money >= Money(D("2.50"), "EUR")


def test_zero_in_any_currency():
    assert Money.zero("JPY") == Money(D(0), "JPY")
    with pytest.raises(UnknownCurrencyError):
        Money.zero("XYZ")


def test_rounded_uses_the_currency_minor_unit():
    assert Money(D("1234.5"), "JPY").rounded() == Money(D("1235"), "JPY")
    assert Money(D("1.2345"), "USD").rounded() == Money(D("1.23"), "USD")
    assert Money(D("1.2345"), "KWD").rounded() == Money(D("1.235"), "KWD")
    assert Money(D("0.125"), "USD").rounded(rounding=ROUND_HALF_EVEN) == Money(D("0.12"), "USD")


def test_sum_with_an_explicit_zero_start():
    lines = [Money(D("0.10"), "USD"), Money(D("0.20"), "USD")]
    assert sum(lines, Money.zero("USD")) == Money(D("0.30"), "USD")


def test_exact_context_raises_instead_of_rounding():
    with localcontext(exact_context()), pytest.raises(Inexact):
        D(1) / D(3)
    # Digits well past the default 28-digit context stay exact.
    a, b = D("1234567890123456789.123456789"), D("1000000000.000000001")
    with localcontext(exact_context()):
        product = a * b
    assert Fraction(product) == Fraction(a) * Fraction(b)
    assert len(product.as_tuple().digits) > 28


def test_money_column_reads_an_amount_column_with_the_rows_currency():
    from decimal import Decimal

    from core.money import Money, money_column

    class Row:
        total_money = money_column("total")
        fee_money = money_column("fee", currency="fee_currency")

        def __init__(self, total, currency, fee, fee_currency):
            self.total, self.currency, self.fee, self.fee_currency = total, currency, fee, fee_currency

    row = Row(Decimal("12.50"), "EUR", Decimal(3), "JPY")
    assert row.total_money == Money(Decimal("12.50"), "EUR")
    assert row.fee_money == Money(Decimal(3), "JPY")
    row.total = Decimal("-1.25")  # read at access time, never cached
    assert row.total_money == Money(Decimal("-1.25"), "EUR")
    with pytest.raises(AttributeError):
        row.total_money = Money(Decimal(1), "EUR")  # read-only: the columns are what is stored
