"""Decimal text as the API and price documents take it: one parser for every amount, rate and
quantity that arrives as a string.

The one accepted spelling is ASCII plain notation, `-?[0-9]+(.[0-9]+)?` ("49.00", "-1.5"): no
exponent ("1e2", "1e999999"), no "NaN"/"Infinity", no spaces, no "+", and no digits of other
scripts, which Python's `Decimal()` reads (Arabic-Indic "\u0661\u0660\u0660" is 100 to it) and a
billing product must not. Digits are bounded so a value fits the column or the exact context it
goes to: by default the money columns, numeric(24, 10) (`billing.models.plan.PRICE_DIGITS`), i.e.
14 integer and 10 decimal digits; price documents allow 20 and 12 (billing.pricing.schema)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from core.errors import DomainError

# [0-9], not \d: \d matches every Unicode decimal digit. fullmatch, not `$`, which allows a "\n".
_PLAIN = re.compile(r"-?(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?")
AMOUNT_INTEGER_DIGITS = 14  # numeric(24, 10): 24 - 10
AMOUNT_FRACTION_DIGITS = 10


class DecimalTextError(ValueError):
    """`reason` is "format" (not plain ASCII decimal notation) or "range" (too many digits)."""

    def __init__(self, reason: Literal["format", "range"], message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def decimal_text_parse(value: str, *, max_integer_digits: int, max_fraction_digits: int) -> Decimal:
    """The Decimal a plain-notation string spells (DecimalTextError otherwise). Integer digits are
    counted without leading zeros; "-0" is 0."""
    match = _PLAIN.fullmatch(value)
    if match is None:
        raise DecimalTextError("format", "is not a decimal string")
    integer_digits = len(match["int"].lstrip("0"))
    fraction_digits = len(match["frac"] or "")
    if integer_digits > max_integer_digits or fraction_digits > max_fraction_digits:
        raise DecimalTextError(
            "range", f"has more than {max_integer_digits} integer or {max_fraction_digits} decimal digits"
        )
    parsed = Decimal(value)
    return abs(parsed) if parsed.is_zero() else parsed


def decimal_parse(
    value: Any,
    *,
    field: str,
    code: str = "invalid_amount",
    max_integer_digits: int = AMOUNT_INTEGER_DIGITS,
    max_fraction_digits: int = AMOUNT_FRACTION_DIGITS,
) -> Decimal:
    """`value` as a Decimal, or DomainError(code). A string must be plain decimal notation; a
    Decimal (from a form or a service) is held to the same digit bounds."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise DomainError(f'{field} must be a decimal string such as "49.00".', code=code)
        value = format(value, "f")
    if not isinstance(value, str):
        raise DomainError(f'{field} must be a decimal string such as "49.00".', code=code)
    try:
        return decimal_text_parse(value, max_integer_digits=max_integer_digits, max_fraction_digits=max_fraction_digits)
    except DecimalTextError as exc:
        if exc.reason == "format":
            raise DomainError(f'{field} must be a decimal string such as "49.00".', code=code) from None
        raise DomainError(
            f"{field} must have at most {max_integer_digits} digits before the decimal point and "
            f"{max_fraction_digits} after it.",
            code=code,
        ) from None
