"""How rates become tax amounts on one line, rounded per component half-up (core.money).

- Tax-exclusive (`amount` is net): each component is `round(net * rate / 100)`; gross is net plus
  the components.
- Tax-inclusive (`amount` is gross): with R the sum of the line's rates, each component is
  `round(gross * rate / (100 + R))` on its own, and net is `gross - sum(components)`, so the gross
  the customer was quoted is preserved exactly. With one component that is the familiar
  `tax = round(gross * rate / (100 + rate))` (100.00 at 19 % -> 15.97 tax, 84.03 net). With several,
  `round(net * rate / 100)` recomputed from that net may differ from a component by one minor unit;
  keeping the gross wins, as the price the customer agreed to is the gross.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import (
    ROUND_05UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

from core.money import DECIMAL_PRECISION, exact_context, round_money

__all__ = ["line_split"]


def line_split(
    amount: Decimal, currency: str, rates: Sequence[Decimal], *, inclusive: bool
) -> tuple[Decimal, tuple[Decimal, ...]]:
    """(net, tax per rate) of a line whose `amount` is already rounded to `currency`."""
    if not inclusive:
        with localcontext(exact_context()):
            # net * rate / 100 terminates (rate is a finite decimal), so this is exact before rounding.
            taxes = tuple(round_money(amount * rate / 100, currency) for rate in rates)
        return amount, taxes
    with localcontext(exact_context()):
        denominator = 100 + sum(rates, Decimal(0))
    taxes = tuple(round_money(_share(amount, rate, denominator), currency) for rate in rates)
    with localcontext(exact_context()):
        net = amount - sum(taxes, Decimal(0))
    return net, taxes


def _share(amount: Decimal, rate: Decimal, denominator: Decimal) -> Decimal:
    """amount * rate / denominator to DECIMAL_PRECISION digits, rounded so that the later rounding to
    the currency is exactly the rounding of the true quotient.

    gross * rate / (100 + R) rarely terminates (1/119). ROUND_05UP ("round to odd") keeps a sticky
    last digit: a quotient just above a tie stays above it, and an exact tie stays exact, so the
    half-up rounding that follows in round_money cannot be fooled by a double rounding. It needs
    two spare digits past the currency's minor unit, which 50 significant digits leave for any
    realistic amount.
    """
    with localcontext(exact_context()):
        numerator = amount * rate
    with localcontext(
        Context(prec=DECIMAL_PRECISION, rounding=ROUND_05UP, traps=[InvalidOperation, DivisionByZero, Overflow])
    ):
        return numerator / denominator
