"""Money: a Decimal amount and an ISO 4217 currency that travel together.

This module is the one place that knows how money is rounded (CONVENTIONS "Money and time"):
engine amounts stay exact, and lines are rounded to the currency's minor unit at named points with
the mode passed explicitly, defaulting to `LINE_ROUNDING`. Floats are refused everywhere: a float
amount is already wrong before any arithmetic happens (0.1 + 0.2 != 0.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from fractions import Fraction
from functools import cache

from babel.numbers import get_currency_precision, list_currencies

__all__ = [
    "DECIMAL_PRECISION",
    "LINE_ROUNDING",
    "CurrencyMismatchError",
    "Money",
    "UnknownCurrencyError",
    "exact_context",
    "minor_units",
    "money_column",
    "prorate",
    "round_fraction",
    "round_money",
]

# Invoice lines are rounded half-up (ARCHITECTURE "Pricing semantics"). Python's ROUND_HALF_UP
# rounds ties away from zero, so a credit line of -0.125 USD becomes -0.13, the mirror of +0.13.
LINE_ROUNDING = ROUND_HALF_UP

# Significant digits for money arithmetic. Prices are validated to at most 20 integer and 12
# fractional digits and quantities are meter totals, so realistic products stay far below this;
# past it the context below raises instead of silently rounding.
DECIMAL_PRECISION = 50

_CURRENCIES = frozenset(list_currencies())


class CurrencyMismatchError(ValueError):
    """Two amounts of different currencies were combined or compared."""


class UnknownCurrencyError(ValueError):
    """The code is not an ISO 4217 currency that babel knows (babel also knows its minor unit)."""


def exact_context() -> Context:
    """A fresh decimal context in which every operation is exact or raises `decimal.Inexact`.

    Use it as `with localcontext(exact_context()):`. Trapping Inexact turns "the result needed
    more than DECIMAL_PRECISION digits" into an error instead of a silently rounded amount.
    """
    return Context(
        prec=DECIMAL_PRECISION,
        rounding=ROUND_HALF_UP,
        traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
    )


def _check_currency(currency: object) -> str:
    if not isinstance(currency, str) or currency not in _CURRENCIES:
        raise UnknownCurrencyError(f"{currency!r} is not an ISO 4217 currency code.")
    return currency


def _check_amount(amount: object, *, what: str = "amount") -> Decimal:
    # bool is an int subclass; True dollars is a bug, not an amount.
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(f"{what} must be a Decimal or int, not {type(amount).__name__}.")
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"{what} must be finite, not {value}.")
    return value


@cache
def minor_units(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit (ISO 4217 via babel):
    JPY 0, USD 2, KWD 3. Raises UnknownCurrencyError for codes babel does not list (babel itself
    would silently answer 2 for them)."""
    return get_currency_precision(_check_currency(currency))


def round_money(amount: Decimal, currency: str, *, rounding: str = LINE_ROUNDING) -> Decimal:
    """`amount` quantized to the currency's minor unit with the given decimal rounding mode.

    The result always carries exactly `minor_units(currency)` decimal places (1 USD -> 1.00), so
    rounded amounts print and store uniformly. Exact: raises rather than lose integer digits.
    """
    value = _check_amount(amount)
    exponent = Decimal(1).scaleb(-minor_units(currency))
    with localcontext(exact_context()) as ctx:
        # Quantize is where rounding is *meant* to happen; only inexactness elsewhere is an error.
        ctx.traps[Inexact] = False
        return value.quantize(exponent, rounding=rounding)


def prorate(amount: Decimal, part: int, whole: int, currency: str, *, rounding: str = LINE_ROUNDING) -> Decimal:
    """`amount * part / whole` rounded once to the currency's minor unit: the proration of a fee to
    `part` of `whole` seconds (Stripe prorates to the second). The ratio is kept as an exact
    fraction, so 31.00 for 10 of 31 days is 10.00 exactly, never 9.999... rounded."""
    value = _check_amount(amount)
    if isinstance(part, bool) or isinstance(whole, bool) or not isinstance(part, int) or not isinstance(whole, int):
        raise TypeError("part and whole are whole seconds (int).")
    if whole <= 0 or not 0 <= part <= whole:
        raise ValueError(f"cannot prorate {part} of {whole} seconds.")
    if part == whole:
        return round_money(value, currency, rounding=rounding)
    if rounding != ROUND_HALF_UP:
        raise ValueError("prorate rounds half-up only (the line rounding).")
    return round_fraction(Fraction(value) * part / whole, currency)


def round_fraction(exact: Fraction, currency: str) -> Decimal:
    """An exact ratio (a share of an amount) rounded once, half-up, to the currency's minor unit."""
    scaled = exact * 10 ** minor_units(currency)  # in minor units, still exact
    floor, remainder = divmod(abs(scaled.numerator), scaled.denominator)
    minor = floor + (1 if 2 * remainder >= scaled.denominator else 0)
    if scaled < 0:
        minor = -minor
    return Decimal(minor).scaleb(-minor_units(currency)).quantize(Decimal(1).scaleb(-minor_units(currency)))


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in one currency. Immutable; arithmetic returns new values.

    - `amount` is a Decimal (an int is accepted and converted); floats and non-finite values are
      refused. The amount keeps full precision until `rounded()` is called at a named point.
    - `+`, `-` and ordering comparisons need the same currency (CurrencyMismatchError otherwise);
      `==` between different currencies is simply False.
    - `*` takes a Decimal or int factor (a quantity or a ratio), never another Money or a float.
    """

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _check_amount(self.amount))
        _check_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def rounded(self, *, rounding: str = LINE_ROUNDING) -> Money:
        """This amount rounded to the currency's minor unit (see `round_money`)."""
        return Money(round_money(self.amount, self.currency, rounding=rounding), self.currency)

    def _same_currency(self, other: Money, operation: str) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"Cannot {operation} {self.currency} and {other.currency}.")

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "add")
        with localcontext(exact_context()):
            return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "subtract")
        with localcontext(exact_context()):
            return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: object) -> Money:
        if isinstance(factor, Money | float | bool) or not isinstance(factor, Decimal | int):
            return NotImplemented
        with localcontext(exact_context()):
            return Money(self.amount * _check_amount(factor, what="factor"), self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        with localcontext(exact_context()):
            return Money(-self.amount, self.currency)

    def _compare(self, other: object, operation: str) -> tuple[Decimal, Decimal] | None:
        if not isinstance(other, Money):
            return None
        self._same_currency(other, operation)
        return self.amount, other.amount

    def __lt__(self, other: object) -> bool:
        pair = self._compare(other, "compare")
        return NotImplemented if pair is None else pair[0] < pair[1]

    def __le__(self, other: object) -> bool:
        pair = self._compare(other, "compare")
        return NotImplemented if pair is None else pair[0] <= pair[1]

    def __gt__(self, other: object) -> bool:
        pair = self._compare(other, "compare")
        return NotImplemented if pair is None else pair[0] > pair[1]

    def __ge__(self, other: object) -> bool:
        pair = self._compare(other, "compare")
        return NotImplemented if pair is None else pair[0] >= pair[1]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def money_column(column: str, *, currency: str = "currency") -> property:
    """A read-only attribute that gives a model's amount column as Money with the row's currency
    column: `total_money = money_column("total")`. Models keep plain amount and currency columns
    (queries and constraints stay simple); domain code reads them as Money."""

    def get(obj: object) -> Money:
        return Money(getattr(obj, column), getattr(obj, currency))

    return property(get, doc=f"`{column}` as Money in the row's `{currency}`.")
