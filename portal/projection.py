"""End-of-period usage from the run rate so far, with a low/high band. Pure: figures in, figures
out; the caller reads the usage and prices the three outcomes through the billing engine.

The method, as the projection page explains it:

- A total (count and sum meters) keeps growing at the average rate of the period so far:
  expected = so far + (so far / time elapsed) x time remaining. Time is counted to the second, so
  a period seen for 3.5 days is extrapolated from 3.5 days, not from 3 or 4.
- The band is a 90 % prediction interval for what the remaining days add, treating days as
  independent draws around the average: with s the standard deviation of the whole days seen,
  k their number and r the days remaining, the remaining usage has a standard deviation of
  s * sqrt(r + r^2 / k) (the day-to-day spread over r days, plus the uncertainty of the average
  itself, estimated from k days). Low and high are expected -/+ 1.645 of those. The low end never
  goes below what is already used.
- With fewer than two whole days there is no spread to measure: the band runs from what is used
  so far to twice the expected remainder.
- A level (max, min, latest, distinct count, time-weighted average) is not a total and does not
  grow with time: the projection is its current value, and so is the band.

Decimal throughout (ARCHITECTURE: never float); the square root uses Decimal.sqrt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

ADDITIVE = frozenset({"count", "sum"})
Z_90 = Decimal("1.645")  # two-sided 90 % of a normal distribution
SECONDS_PER_DAY = Decimal(86400)
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Projection:
    so_far: Decimal
    expected: Decimal
    low: Decimal
    high: Decimal
    method: str  # "run_rate" | "run_rate_no_spread" | "level" | "none"

    def factors(self) -> tuple[Decimal, Decimal, Decimal]:
        """(low, expected, high) as multiples of what is used so far (1 for nothing used: a
        projection from nothing is nothing)."""
        if self.so_far == 0:
            return Decimal(1), Decimal(1), Decimal(1)
        return self.low / self.so_far, self.expected / self.so_far, self.high / self.so_far


def _stdev(values: Sequence[Decimal]) -> Decimal:
    """Sample standard deviation (n - 1)."""
    n = len(values)
    mean = sum(values, _ZERO) / n
    return (sum(((v - mean) ** 2 for v in values), _ZERO) / (n - 1)).sqrt()


def project(
    *,
    aggregation: str,
    so_far: Decimal | None,
    full_days: Sequence[Decimal],
    elapsed_seconds: int,
    remaining_seconds: int,
) -> Projection:
    """The end-of-period value of one meter.

    `so_far`: the meter's value over the period until now; `full_days`: its value on each whole
    day of the period seen so far (the day in progress left out); `elapsed_seconds` /
    `remaining_seconds`: the period's time before and after now."""
    if so_far is None:
        return Projection(_ZERO, _ZERO, _ZERO, _ZERO, "none")
    if aggregation not in ADDITIVE or remaining_seconds <= 0:
        return Projection(so_far, so_far, so_far, so_far, "level")
    if elapsed_seconds <= 0:
        return Projection(so_far, so_far, so_far, so_far, "none")
    with localcontext(prec=34):
        remaining = Decimal(remaining_seconds)
        expected = so_far + so_far / Decimal(elapsed_seconds) * remaining
        if len(full_days) < 2:
            return Projection(so_far, expected, so_far, expected + (expected - so_far), "run_rate_no_spread")
        r = remaining / SECONDS_PER_DAY
        k = Decimal(len(full_days))
        spread = Z_90 * _stdev(full_days) * (r + r * r / k).sqrt()
        return Projection(so_far, expected, max(so_far, expected - spread), expected + spread, "run_rate")


def mape(pairs: Sequence[tuple[Decimal, Decimal]]) -> Decimal:
    """Mean absolute percentage error of (projected, actual) pairs, in percent; pairs whose
    actual is zero are left out (their percentage is undefined)."""
    errors = [abs(p - a) / abs(a) for p, a in pairs if a != 0]
    if not errors:
        raise ValueError("no pair with a non-zero actual value")
    with localcontext(prec=34):
        return sum(errors, _ZERO) / len(errors) * 100


# Measured by bench/portal_projection.py (seed 7; reproduce with that command) and shown on the
# projection page. Update both when the method changes.
BACKTEST_NOTE = (
    "tested on six months of seeded daily usage (a weekday/weekend pattern, steady growth and "
    "±15 % day-to-day noise), the projected cost was off by 8.0 % on average from day 7 of a "
    "period, 5.5 % from day 14 and 5.0 % from day 21 (mean absolute percentage error), and every "
    "actual total fell inside the range."
)
