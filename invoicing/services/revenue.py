"""Revenue recognition (ASC 606 / IFRS 15 shape, issue 14 item 4): the schedule of each finalized
invoice line, written in the transaction that finalizes the invoice (or issues the credit note,
or voids it), and the month close.

What a line earns is its `net_amount` (the line with its discounts, before tax: tax is never
revenue), spread by its kind:
- a base fee (and the credit for unused time that reverses part of one) by day over its service
  period, each UTC day weighted by the seconds of the period it holds;
- usage and its late corrections on the days of the period they were consumed (the engine bills a
  period's usage as one amount, so the days share it like a fee; days before the invoice are
  unbilled revenue until it is issued);
- minimums and commitments (settled when the period ends) on the period's last day; anything else
  on the day the invoice was issued (a point in time).

Rounding happens at one named point, `day_shares`: each day's exact share is rounded toward zero
to the currency's minor unit and the last day takes the remainder, so a line's rows sum to its
amount exactly. A credit note spreads its (negative) amount over the line's days the same way; a
void reverses what the invoice's rows still hold. Payments and refunds write nothing here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction

from django.db import connection, transaction
from django.db.models import Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from accounts.audit import Actor, audit_actor, audit_event
from billing.bill import LineKind
from core.errors import DomainError
from core.money import minor_units
from invoicing.models import (
    CreditNote,
    Invoice,
    InvoiceLine,
    RevenueEntry,
    RevenueMonthClose,
    RevenuePattern,
    RevenueSource,
)

# Each day's share is rounded toward zero (so the last day's remainder has the sign of the amount).
DAY_ROUNDING = ROUND_DOWN
_RATABLE = {LineKind.BASE_FEE, LineKind.BASE_FEE_CREDIT}
_USAGE = {LineKind.USAGE, LineKind.CORRECTION}
_PERIOD_END = {LineKind.CHARGE_MINIMUM, LineKind.COMMITMENT}
# One advisory lock: writers share it, a close takes it alone, so a close never races a row into
# the month it closes while finalizing chunks do not wait for each other.
_LOCK_KEY = 0x7265_7672  # "revr"


def _lock(*, exclusive: bool = False) -> None:
    with connection.cursor() as cursor:
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        cursor.execute(f"SELECT {fn}(%s)", [_LOCK_KEY])


def day_weights(start: datetime, end: datetime) -> list[tuple[date, int]]:
    """The UTC days of [start, end) with the seconds of the period each holds."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    days, cursor = [], start
    while cursor < end:
        next_midnight = datetime.combine(cursor.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        stop = min(next_midnight, end)
        days.append((cursor.date(), int((stop - cursor).total_seconds())))
        cursor = stop
    return [(day, seconds) for day, seconds in days if seconds > 0]


def day_shares(amount: Decimal, currency: str, weights: Sequence[tuple[date, int]]) -> list[tuple[date, Decimal]]:
    """`amount` over the weighted days: exact shares rounded toward zero, the remainder on the
    last day (the named rounding point). Days whose share is zero are left out."""
    if not weights:
        raise ValueError("no days to spread an amount over")
    whole = sum(seconds for _, seconds in weights)
    units = minor_units(currency)
    scaled = Fraction(amount) * 10**units  # the amount in minor units, exact
    shares, given = [], Decimal(0)
    for day, seconds in weights[:-1]:
        exact = scaled * seconds / whole
        minor = abs(exact.numerator) // exact.denominator  # toward zero: DAY_ROUNDING
        share = Decimal(-minor if exact < 0 else minor).scaleb(-units)
        shares.append((day, share))
        given += share
    shares.append((weights[-1][0], amount - given))
    return [(day, share) for day, share in shares if share != 0]


def _pattern(line: InvoiceLine, invoice: Invoice) -> tuple[str, list[tuple[date, int]]]:
    """How `line` is recognized and over which weighted days."""
    if line.kind in _RATABLE and line.period_end > line.period_start:
        return RevenuePattern.RATABLE, day_weights(line.period_start, line.period_end)
    if line.kind in _USAGE and line.period_end > line.period_start:
        return RevenuePattern.USAGE, day_weights(line.period_start, line.period_end)
    if line.kind in _PERIOD_END:
        return RevenuePattern.POINT, [((line.period_end - timedelta(microseconds=1)).astimezone(UTC).date(), 1)]
    return RevenuePattern.POINT, [(invoice.issued_at.astimezone(UTC).date(), 1)]


def _closed_months() -> set[date]:
    return set(RevenueMonthClose.objects.values_list("month", flat=True))


def _open_day(day: date, closed: set[date]) -> date:
    """`day`, or the first day of the first open month after it when its month is closed."""
    month = day.replace(day=1)
    if month not in closed:
        return day
    while month in closed:
        month = (month + timedelta(days=32)).replace(day=1)
    return month


def _rows(
    line: InvoiceLine,
    invoice: Invoice,
    amount: Decimal,
    *,
    source: str,
    booked: datetime,
    closed: set[date],
    note: CreditNote | None = None,
) -> list[RevenueEntry]:
    pattern, weights = _pattern(line, invoice)
    return [
        RevenueEntry(
            line=line,
            invoice=invoice,
            credit_note=note,
            source=source,
            pattern=pattern,
            currency=invoice.currency,
            service_on=day,
            recognized_on=_open_day(day, closed),
            booked_on=booked.astimezone(UTC).date(),
            amount=share,
        )
        for day, share in day_shares(amount, invoice.currency, weights)
    ]


def revenue_schedule_build(invoices: Iterable[Invoice]) -> int:
    """The schedule of newly finalized invoices (inside their finalizing transaction). Discount
    lines have no rows of their own: their effect is in the `net_amount` of the line they reduce."""
    invoices = [invoice for invoice in invoices if invoice.issued_at is not None]
    if not invoices:
        return 0
    _lock()
    closed = _closed_months()
    by_id = {invoice.pk: invoice for invoice in invoices}
    rows: list[RevenueEntry] = []
    lines = InvoiceLine.objects.filter(invoice_id__in=by_id).exclude(kind=LineKind.DISCOUNT).exclude(net_amount=0)
    for line in lines.order_by("invoice_id", "position"):
        invoice = by_id[line.invoice_id]
        rows += _rows(
            line, invoice, line.net_amount, source=RevenueSource.INVOICE, booked=invoice.issued_at, closed=closed
        )
    RevenueEntry.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def revenue_credit_note_reverse(note: CreditNote) -> int:
    """A credit note takes its lines' amounts back over the same days as the lines earned them."""
    _lock()
    closed = _closed_months()
    invoice = note.invoice
    rows: list[RevenueEntry] = []
    for credited in note.lines.select_related("invoice_line"):
        rows += _rows(
            credited.invoice_line,
            invoice,
            -credited.amount,
            source=RevenueSource.CREDIT_NOTE,
            booked=note.created_at,
            closed=closed,
            note=note,
        )
    RevenueEntry.objects.bulk_create(rows)
    return len(rows)


def revenue_void_reverse(invoice: Invoice, *, at: datetime) -> int:
    """A voided invoice earns nothing: what each of its line-days still holds is reversed."""
    _lock()
    closed = _closed_months()
    held = (
        RevenueEntry.objects.filter(invoice=invoice)
        .values("line_id", "pattern", "service_on")
        .annotate(total=Sum("amount"))
        .order_by("line_id", "service_on")
    )
    rows = [
        RevenueEntry(
            line_id=row["line_id"],
            invoice=invoice,
            source=RevenueSource.VOID,
            pattern=row["pattern"],
            currency=invoice.currency,
            service_on=row["service_on"],
            recognized_on=_open_day(row["service_on"], closed),
            booked_on=at.astimezone(UTC).date(),
            amount=-row["total"],
        )
        for row in held
        if row["total"] != 0
    ]
    RevenueEntry.objects.bulk_create(rows)
    return len(rows)


def revenue_month_close(*, actor: Actor, month: date, at: datetime | None = None) -> RevenueMonthClose:
    """Lock `month`: rows for its days written later land in the first open month after it.
    Refused (nothing written) before the month has ended, for a month already closed, and while
    an earlier month that holds revenue is still open (months close in order)."""
    at = at or timezone.now()
    if month.day != 1:
        raise DomainError("A month is given by its first day.", code="invalid_month")
    following = (month + timedelta(days=32)).replace(day=1)
    if datetime.combine(following, datetime.min.time(), tzinfo=UTC) > at:
        raise DomainError(f"{month:%Y-%m} has not ended yet.", code="month_not_ended", status_code=409)
    with audit_actor(actor), transaction.atomic():
        _lock(exclusive=True)
        closed = _closed_months()
        if month in closed:
            raise DomainError(f"{month:%Y-%m} is already closed.", code="month_closed", status_code=409)
        held = (
            RevenueEntry.objects.filter(recognized_on__lt=month)
            .annotate(month=TruncMonth("recognized_on"))
            .values_list("month", flat=True)
            .distinct()
        )
        still_open = sorted(day for day in held if day not in closed)
        if still_open:
            raise DomainError(
                f"{still_open[0]:%Y-%m} holds revenue and is still open: close it first.",
                code="earlier_month_open",
                status_code=409,
            )
        row = RevenueMonthClose.objects.create(
            month=month, closed_at=at, closed_by=actor if getattr(actor, "pk", None) else None
        )
        totals = RevenueEntry.objects.filter(recognized_on__gte=month, recognized_on__lt=following)
        recognized = {
            r["currency"]: str(r["total"]) for r in totals.values("currency").annotate(total=Sum("amount")).order_by()
        }
        audit_event(row, event="revenue.month_closed", month=f"{month:%Y-%m}", recognized=recognized)
    return row
