"""Revenue recognition (ASC 606 / IFRS 15 shape, issue 14 item 4): the schedule of each finalized
invoice line, written in the transaction that finalizes the invoice (or issues the credit note,
or voids it), and the month close.

The grain is one row per line (and document) per UTC calendar month, dated the month's last day:
the waterfall, the month close and the journal are monthly, and a row per day (~30 a line) would
multiply the writes of finalization, the billing run's hot path (docs/revenue.md, the figures).

What a line earns is its `net_amount` (the line with its discounts, before tax: tax is never
revenue), spread by its kind:
- a base fee (and the credit for unused time that reverses part of one) over the UTC months of its
  service period, each weighted by the seconds of the period it holds;
- usage and its late corrections over the months of the period they were consumed in (the engine
  bills a period's usage as one amount, so the months share it like a fee; a month before the
  invoice is unbilled revenue until it is issued);
- minimums and commitments (settled when the period ends) in the month of the period's last
  instant; anything else in the month the invoice was issued (a point in time).

Rounding happens at one named point, `month_shares`: each month's exact share is rounded toward
zero to the currency's minor unit and the last month takes the remainder, so a line's rows sum to
its amount exactly. A credit note spreads its (negative) amount over the line's months the same
way; a void reverses what each of the invoice's line-months still holds. Payments and refunds
write nothing here."""

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

# Each month's share is rounded toward zero (so the last month's remainder has the sign of the amount).
MONTH_ROUNDING = ROUND_DOWN
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


def month_end(day: date) -> date:
    """The last day of `day`'s month: the date a month's rows carry."""
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def month_weights(start: datetime, end: datetime) -> list[tuple[date, int]]:
    """The UTC calendar months of [start, end), each by its last day, with the seconds of the
    period it holds."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    months, cursor = [], start
    while cursor < end:
        following = datetime.combine(month_end(cursor.date()) + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        stop = min(following, end)
        months.append((month_end(cursor.date()), int((stop - cursor).total_seconds())))
        cursor = stop
    return [(month, seconds) for month, seconds in months if seconds > 0]


def month_shares(amount: Decimal, currency: str, weights: Sequence[tuple[date, int]]) -> list[tuple[date, Decimal]]:
    """`amount` over the weighted months: exact shares rounded toward zero, the remainder on the
    last month (the named rounding point). Months whose share is zero are left out."""
    if not weights:
        raise ValueError("no months to spread an amount over")
    whole = sum(seconds for _, seconds in weights)
    units = minor_units(currency)
    scaled = Fraction(amount) * 10**units  # the amount in minor units, exact
    shares, given = [], Decimal(0)
    for month, seconds in weights[:-1]:
        exact = scaled * seconds / whole
        minor = abs(exact.numerator) // exact.denominator  # toward zero: MONTH_ROUNDING
        share = Decimal(-minor if exact < 0 else minor).scaleb(-units)
        shares.append((month, share))
        given += share
    shares.append((weights[-1][0], amount - given))
    return [(month, share) for month, share in shares if share != 0]


def _pattern(line: InvoiceLine, invoice: Invoice) -> tuple[str, list[tuple[date, int]]]:
    """How `line` is recognized and over which weighted months."""
    if line.kind in _RATABLE and line.period_end > line.period_start:
        return RevenuePattern.RATABLE, month_weights(line.period_start, line.period_end)
    if line.kind in _USAGE and line.period_end > line.period_start:
        return RevenuePattern.USAGE, month_weights(line.period_start, line.period_end)
    if line.kind in _PERIOD_END:
        last = (line.period_end - timedelta(microseconds=1)).astimezone(UTC).date()
        return RevenuePattern.POINT, [(month_end(last), 1)]
    return RevenuePattern.POINT, [(month_end(invoice.issued_at.astimezone(UTC).date()), 1)]


def _closed_months() -> set[date]:
    return set(RevenueMonthClose.objects.values_list("month", flat=True))


def _open_month(month: date, closed: set[date]) -> date:
    """`month` (its last day), or the last day of the first open month after it when it is closed
    (`closed` holds first days)."""
    first = month.replace(day=1)
    while first in closed:
        first = (first + timedelta(days=32)).replace(day=1)
    return month_end(first)


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
            service_on=month,
            recognized_on=_open_month(month, closed),
            booked_on=booked.astimezone(UTC).date(),
            amount=share,
        )
        for month, share in month_shares(amount, invoice.currency, weights)
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
    """A credit note takes its lines' amounts back over the same months as the lines earned them."""
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
    """A voided invoice earns nothing: what each of its line-months still holds is reversed."""
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
            recognized_on=_open_month(row["service_on"], closed),
            booked_on=at.astimezone(UTC).date(),
            amount=-row["total"],
        )
        for row in held
        if row["total"] != 0
    ]
    RevenueEntry.objects.bulk_create(rows)
    return len(rows)


def revenue_month_close(*, actor: Actor, month: date, at: datetime | None = None) -> RevenueMonthClose:
    """Lock `month`: rows for it written later land in the first open month after it.
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
