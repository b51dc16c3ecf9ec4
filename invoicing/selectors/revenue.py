"""The deferred-revenue waterfall (issue 14, item 4) from the recognition rows
(invoicing.services.revenue): per currency and month, what was billed (booked), what was
recognized, and at each month's end the deferred revenue (billed, not yet earned) and the unbilled
revenue (earned, not yet invoiced: usage before its invoice). One grouped query; the months are
summed in Python, so billed - recognized to date = deferred - unbilled holds by construction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.db.models.functions import TruncMonth

from invoicing.models import RevenueEntry, RevenueMonthClose

ZERO = Decimal(0)


def month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class WaterfallMonth:
    month: date
    closed: bool
    billed: Decimal
    recognized: Decimal
    deferred_end: Decimal
    unbilled_end: Decimal


@dataclass(frozen=True)
class WaterfallRow:
    """What one month billed, by the month it is (or will be) recognized in."""

    booked: date
    before: Decimal  # recognized before the window (usage billed late)
    cells: list[Decimal]
    later: Decimal  # recognized after the window
    total: Decimal


@dataclass(frozen=True)
class Waterfall:
    currency: str
    months: list[WaterfallMonth]
    rows: list[WaterfallRow] = field(default_factory=list)


def revenue_currencies() -> list[str]:
    return sorted(RevenueEntry.objects.values_list("currency", flat=True).distinct().order_by())


def revenue_waterfall_get(*, currency: str, start: date, months: int) -> Waterfall:
    """`months` months from `start` (a first day) in `currency`."""
    window = [month_add(start, i) for i in range(months)]
    end = month_add(start, months)
    # Only rows the window's figures can hold: a row booked and recognized before the window (or
    # both after it) is in no month's billed, recognized, deferred or unbilled amount nor in a
    # row of the window, so the query reads the window's rows and not the whole history.
    touches = (Q(booked_on__gte=start) | Q(recognized_on__gte=start)) & (
        Q(booked_on__lt=end) | Q(recognized_on__lt=end)
    )
    grouped = (
        RevenueEntry.objects.filter(touches, currency=currency)
        .annotate(booked=TruncMonth("booked_on"), recognized=TruncMonth("recognized_on"))
        .values("booked", "recognized")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    cells: dict[tuple[date, date], Decimal] = defaultdict(lambda: ZERO)
    for row in grouped:
        cells[(row["booked"], row["recognized"])] += row["total"]
    closed = set(RevenueMonthClose.objects.values_list("month", flat=True))
    summary = []
    for month in window:
        after = month_add(month, 1)
        summary.append(
            WaterfallMonth(
                month=month,
                closed=month in closed,
                billed=sum((v for (b, _), v in cells.items() if b == month), ZERO),
                recognized=sum((v for (_, r), v in cells.items() if r == month), ZERO),
                deferred_end=sum((v for (b, r), v in cells.items() if b < after <= r), ZERO),
                unbilled_end=sum((v for (b, r), v in cells.items() if r < after <= b), ZERO),
            )
        )
    rows = []
    for booked in window:
        mine = {r: v for (b, r), v in cells.items() if b == booked}
        if not mine:
            continue
        rows.append(
            WaterfallRow(
                booked=booked,
                before=sum((v for r, v in mine.items() if r < start), ZERO),
                cells=[mine.get(month, ZERO) for month in window],
                later=sum((v for r, v in mine.items() if r >= end), ZERO),
                total=sum(mine.values(), ZERO),
            )
        )
    return Waterfall(currency=currency, months=summary, rows=rows)


def month_last_day(month: date) -> date:
    return month_add(month, 1) - timedelta(days=1)
