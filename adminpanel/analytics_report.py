"""The analytics page's read: snapshot rows only (adminpanel.models.RevenueSnapshot), never the
invoices or subscriptions, so its cost does not grow with the number of customers."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date

from dateutil.relativedelta import relativedelta

from adminpanel.models import RevenueSnapshot

TREND_MONTHS = 12  # the charts: the month ends of the 11 months before, and the day itself


@dataclass(frozen=True)
class TrendPoint:
    month: str
    day: date
    figures: dict


@dataclass(frozen=True)
class RevenueReport:
    day: date | None  # None: no snapshot at all yet
    currency: str | None
    currencies: list[str]
    figures: dict | None  # the day's figures in `currency`; None when that day has no snapshot
    trend: list[TrendPoint] = field(default_factory=list)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def revenue_report_get(*, day: date | None, currency: str | None) -> RevenueReport:
    """The figures of `day` (default: the latest snapshot) in `currency` (default: the first the
    day has), with the 12-month trend: two queries."""
    if day is None:
        day = RevenueSnapshot.objects.order_by("-day").values_list("day", flat=True).first()
        if day is None:
            return RevenueReport(day=None, currency=None, currencies=[], figures=None)
    days = [_month_end(day - relativedelta(months=k)) for k in range(TREND_MONTHS - 1, 0, -1)] + [day]
    rows = list(RevenueSnapshot.objects.filter(day__in=days).values_list("day", "currency", "figures"))
    currencies = sorted({c for d, c, _ in rows if d == day})
    if currency not in currencies:
        currency = currencies[0] if currencies else None
    by_day = {d: f for d, c, f in rows if c == currency}
    trend = [TrendPoint(d.strftime("%Y-%m"), d, by_day[d]) for d in days if d in by_day]
    return RevenueReport(day=day, currency=currency, currencies=currencies, figures=by_day.get(day), trend=trend)
