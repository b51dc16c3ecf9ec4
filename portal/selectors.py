"""What the portal pages read. Every function takes an organization the view has already resolved
from the signed-in user's memberships (`portal_organization_get`), so nothing here can reach
another organization's rows: usage is read by the organization's external id, invoices and
credit notes by its id.

Money is priced by the billing engine only: spend so far is the upcoming-invoice preview
(invoicing.selectors.preview, the billing run's own composition) plus what earlier invoices
already billed for the period; the projection prices projected usage through the same
bill_get the run uses (billing.selectors.bill). Nothing here computes a price.

Days are the organization's local days, aggregated in SQL: one statement per meter gives the
total, the groups and a bucket per day (metering's `bounds`; latest and time-weighted averages
are read by hour and folded here). In a zone whose offset is not a whole hour (India, +5:30) a
local day is cut at the end of the UTC hour holding its midnight (the hour counts on the day it
starts in), except for distinct counts, cut at the midnight itself. Periods longer than 32 days
(yearly plans) are charted by UTC day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.http import Http404
from django.utils import timezone as dj_timezone

from billing.bill import LineKind, UsageFigures, UsageRequest
from billing.models import Organization, Subscription
from billing.periods import calendar_period_containing
from billing.schedule import SubscriptionState, next_bill_point
from billing.selectors.bill import bills_get
from billing.selectors.organization import organization_list_for_user, subscription_current_get
from billing.selectors.subscription_state import subscription_states
from core.errors import DomainError
from invoicing.compose import InvoiceDraft
from invoicing.models import FINAL_STATUSES, CreditNote, Invoice, InvoiceLine
from invoicing.selectors.preview import invoice_preview_get
from metering.models import Aggregation, Meter
from metering.models.meter import ROLLUP_AGGREGATIONS
from metering.selectors.meter import meter_list
from metering.selectors.usage import UsageResult, usage_get
from metering.selectors.usage_sql import ceil_hour
from portal.projection import ADDITIVE, Projection, project

PERIODS_SHOWN = 6  # the current period and the five before it
_HOURLY_MAX = timedelta(days=31)  # metering's longest hourly series
# Read hour by hour and folded into days here: a latest value or a time-weighted average is
# metering's per bucket, not a grouping-set aggregate.
_PER_BUCKET = frozenset({Aggregation.LATEST, Aggregation.WEIGHTED_SUM})
_ZERO = Decimal(0)


def portal_organization_get(*, user, external_id: str) -> tuple[Organization, list[Organization]]:
    """The organization `external_id` among the user's own, and all of the user's organizations
    (for the switcher). Another organization, existing or not, is a 404: its existence is not
    revealed."""
    organizations = list(organization_list_for_user(user=user))
    organization = next((o for o in organizations if o.external_id == external_id), None)
    if organization is None:
        raise Http404("No such organization.")
    return organization, organizations


# --- periods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    index: int  # 0: the current period, 1: the one before, ...
    start: datetime
    end: datetime
    first_day: date  # local dates, for labels
    last_day: date

    @property
    def current(self) -> bool:
        return self.index == 0


def _state_of(subscription: Subscription | None) -> SubscriptionState | None:
    if subscription is None:
        return None
    return subscription_states([subscription])[subscription.pk]


def periods_list(
    *, organization: Organization, state: SubscriptionState | None, now: datetime, count: int = PERIODS_SHOWN
) -> list[Period]:
    """The current billing period and up to `count - 1` before it: the subscription's periods
    (not before it started), or calendar months in the organization's timezone without one."""

    def containing(instant: datetime) -> tuple[datetime, datetime]:
        if state is not None:
            return state.period(instant)
        return calendar_period_containing(instant=instant, timezone=organization.timezone, interval="month")

    floor = state.started_at if state is not None else organization.created_at
    zone = ZoneInfo(organization.timezone)
    out: list[Period] = []
    start, end = containing(now)
    while len(out) < count:
        last = (end - timedelta(microseconds=1)).astimezone(zone).date()
        out.append(Period(index=len(out), start=start, end=end, first_day=start.astimezone(zone).date(), last_day=last))
        if start <= floor:
            break
        start, end = containing(start - timedelta(microseconds=1))
    return out


# --- daily usage --------------------------------------------------------------------------------


def local_days(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[date, datetime, datetime]]:
    """The local days of [start, end): (local date, UTC start, UTC end), the first and last cut
    at the range's ends. A DST day is 23 or 25 hours long."""
    out = []
    cursor = start
    day = start.astimezone(zone).date()
    while cursor < end:
        midnight = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
        day_end = min(midnight, end)
        if day_end > cursor:
            out.append((day, cursor, day_end))
            cursor = day_end
        day += timedelta(days=1)
    return out


def _fold(aggregation: str, buckets: list[tuple[datetime, datetime, Decimal | None]]) -> Decimal | None:
    """One local day's value from its hourly buckets (each bucket's start, end, value)."""
    present = [v for _, _, v in buckets if v is not None]
    if aggregation in ADDITIVE:
        return sum(present, _ZERO)
    if not present:
        return None
    if aggregation == Aggregation.MAX:
        return max(present)
    if aggregation == Aggregation.MIN:
        return min(present)
    if aggregation == Aggregation.LATEST:
        return present[-1]
    # weighted_sum: each bucket is its own time-weighted average; the day's is their mean
    # weighted by length (exact: the buckets tile the day).
    total = sum(((e - s).total_seconds() for s, e, v in buckets if v is not None), 0.0)
    weighted = sum((v * Decimal(int((e - s).total_seconds())) for s, e, v in buckets if v is not None), _ZERO)
    return weighted / Decimal(int(total)) if total else None


def day_bounds(
    aggregation: str, days: list[tuple[date, datetime, datetime]], start: datetime, end: datetime
) -> list[datetime]:
    """The boundaries of `days` (local_days of [start, end)) for metering's `bounds`: a distinct
    count's are the local midnights themselves; the others' are rounded up to the UTC hour, so
    that in a zone whose offset is not a whole hour the hour holding midnight counts on the day
    it starts in (the day as the hourly rollups cut it, and as the pages have always shown it)."""
    inner = [day_end for _, _, day_end in days[:-1]]
    if aggregation != Aggregation.UNIQUE_COUNT:
        inner = [min(ceil_hour(instant), end) for instant in inner]
    return [start, *inner, end]


def usage_with_days(
    *,
    meter: Meter,
    customer: str,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    group_by: bool = False,
    live_until: datetime | None = None,
) -> tuple[UsageResult, list[tuple[date, Decimal | None]]]:
    """The meter's usage over [start, end) (optionally by group) and its value on each local day.
    For count, sum, max, min and distinct counts the total, the groups and the days come from one
    statement (metering's grouping sets over the days' own buckets: ~30 rows aggregated in SQL,
    not 720 hours folded here); the dashboard and the projection read each meter once.

    `live_until` (the period's end, when `end` is now): a count, sum, max or min is read to the
    end of the hour in progress (not past `live_until`). The drainer writes an event and its
    hourly rollup in one transaction, so that hour's rollup holds every event stored in it so
    far: read from it rather than from the hour's raw events (tens of thousands for a busy
    customer while it sends). Only an event stamped later than now in this hour counts early,
    as it already does in the spend (the bill reads whole hours)."""
    if end - start <= _HOURLY_MAX + timedelta(days=1) and meter.aggregation not in _PER_BUCKET:
        days = local_days(start, end, zone)
        if live_until is not None and meter.aggregation in ROLLUP_AGGREGATIONS:
            end = max(end, min(ceil_hour(end), live_until))
        bounds = day_bounds(meter.aggregation, days, start, end)
        result = usage_get(meter=meter, customer=customer, start=start, end=end, group_by=group_by, bounds=bounds)
        return result, [(day, point["value"]) for (day, _, _), point in zip(days, result.series, strict=True)]
    if end - start <= _HOURLY_MAX and meter.aggregation != Aggregation.UNIQUE_COUNT:
        result = usage_get(meter=meter, customer=customer, start=start, end=end, group_by=group_by, window="hour")
        return result, usage_daily(
            meter=meter, customer=customer, start=start, end=end, zone=zone, hourly=result.series
        )
    result = usage_get(meter=meter, customer=customer, start=start, end=end, group_by=group_by)
    return result, usage_daily(meter=meter, customer=customer, start=start, end=end, zone=zone)


def usage_daily(
    *, meter: Meter, customer: str, start: datetime, end: datetime, zone: ZoneInfo, hourly: list[dict] | None = None
) -> list[tuple[date, Decimal | None]]:
    """The meter's value on each local day of [start, end); `hourly`: its hourly series of the
    whole range when the caller has already read it."""
    days = local_days(start, end, zone)
    if end - start > _HOURLY_MAX + timedelta(days=1):
        series = usage_get(meter=meter, customer=customer, start=start, end=end, window="day").series
        return [(p["start"].date(), p["value"]) for p in series]
    if meter.aggregation not in _PER_BUCKET:
        series = usage_get(
            meter=meter, customer=customer, start=start, end=end, bounds=day_bounds(meter.aggregation, days, start, end)
        ).series
        return [(day, point["value"]) for (day, _, _), point in zip(days, series, strict=True)]
    if hourly is None:
        hourly = []
        cursor = start
        while cursor < end:  # a 31-day month with a DST change is 745 hours: two statements
            chunk_end = min(cursor + _HOURLY_MAX, end)
            hourly += usage_get(meter=meter, customer=customer, start=cursor, end=chunk_end, window="hour").series
            cursor = chunk_end
    bounds = [
        (p["start"], hourly[i + 1]["start"] if i + 1 < len(hourly) else end, p["value"]) for i, p in enumerate(hourly)
    ]
    out = []
    index = 0
    for day, _day_start, day_end in days:
        mine = []
        while index < len(bounds) and bounds[index][0] < day_end:
            mine.append(bounds[index])
            index += 1
        out.append((day, _fold(meter.aggregation, mine)))
    return out


# --- dashboard ----------------------------------------------------------------------------------


@dataclass
class MeterUsage:
    meter: Meter
    value: Decimal | None
    days: list[tuple[date, Decimal | None]]
    groups: list[tuple[str, Decimal | None]] = field(default_factory=list)
    amount: Decimal | None = None  # priced, this period's charges for the meter (current period)

    @property
    def chart_id(self) -> str:
        return f"chart-{self.meter.code}"

    @property
    def labels(self) -> list[str]:
        # strftime rather than the template's date filter (the same text: the site is English
        # only): the filter took ~0.2 ms a row, ~20 ms for a month of three meters' tables.
        return [day.strftime("%a %-d %b") for day, _ in self.days]

    @property
    def table(self) -> list[tuple[str, Decimal | None]]:
        """The days as the page's table shows them: (label, value)."""
        return list(zip(self.labels, (value for _, value in self.days), strict=True))

    @property
    def chart(self) -> dict:
        """What the page's Chart.js reads (json_script): day labels and values as decimal text."""
        return {
            "label": self.meter.name,
            "labels": self.labels,
            "values": [None if value is None else str(value) for _, value in self.days],
        }


@dataclass
class Spend:
    currency: str
    total: Decimal  # before tax
    invoiced: Decimal  # of it, already on finalized invoices (in-advance fees, earlier bill points)
    problem: str = ""  # why the usage could not be priced, if it could not


@dataclass
class Dashboard:
    organization: Organization
    subscription: Subscription | None
    periods: list[Period]
    period: Period
    until: datetime  # the end of what the figures cover: now for the current period
    meters: list[MeterUsage]
    spend: Spend | None  # the current period only
    period_invoices: list[Invoice]  # finalized invoices for the shown period


def _group_label(group: dict) -> str:
    return " · ".join(value if value is not None else "(none)" for value in group.values())


def _period_lines(drafts: list[InvoiceDraft], period: Period) -> list:
    return [d.line for draft in drafts for d in draft.lines if d.line.billing_period_start == period.start]


def _invoiced_for(organization: Organization, period: Period) -> Decimal:
    """What finalized, non-void invoices already billed for this period (the in-advance base fee
    billed at its start, usage of an earlier plan version billed at a plan change)."""
    lines = InvoiceLine.objects.filter(
        invoice__organization=organization,
        invoice__status__in=[s for s in FINAL_STATUSES if s != "void"],
        billing_period_start=period.start,
    ).exclude(kind=LineKind.CORRECTION)
    return sum((line.amount for line in lines), _ZERO)  # the model's Decimal column


def period_charges(
    *, state: SubscriptionState, period: Period, until: datetime, factors: list[dict[int, Decimal] | None] = (None,)
) -> list[list]:
    """The bill lines of `period` on the bill that closes the segment in progress, priced by
    billing's bill_get (the billing run's own path), once per entry of `factors`: with the usage
    as stored now (None), or scaled by it (meter id -> multiple) for a projection. All from one
    read of the usage and billing state (billing's bills_get). Raises BillPricingError."""
    point = next_bill_point(state, until)
    if point is None:
        return [[] for _ in factors]
    bills = bills_get(state, point, usage_adjusts=[_adjust(f, period) if f else None for f in factors])
    return [[line for line in bill.lines if line.billing_period_start == period.start] for bill in bills]


def spend_current(
    *, organization: Organization, state: SubscriptionState, period: Period, until: datetime
) -> tuple[Spend, dict[str, Decimal]]:
    """This period's charges so far, before tax: what the bill closing the period would charge
    for it with the usage as it stands, plus what invoices already billed for it (the in-advance
    base fee, usage before a plan change); and the priced amount per meter code."""
    invoiced = _invoiced_for(organization, period)
    try:
        (lines,) = period_charges(state=state, period=period, until=until)
    except DomainError as exc:  # a bill the usage cannot price (BillPricingError, 422 in the API)
        return Spend(organization.currency, invoiced, invoiced, problem=exc.message), {}
    per_meter: dict[str, Decimal] = {}
    for line in lines:
        if line.meter_code:
            per_meter[line.meter_code] = per_meter.get(line.meter_code, _ZERO) + line.amount.amount
    total = invoiced + sum((line.amount.amount for line in lines), _ZERO)
    return Spend(organization.currency, total, invoiced), per_meter


def dashboard_get(*, organization: Organization, period_index: int = 0, now: datetime | None = None) -> Dashboard:
    """The dashboard of one period (0: the current one; an index past the list is a 404)."""
    now = now or dj_timezone.now()
    subscription = subscription_current_get(organization=organization)
    state = _state_of(subscription)
    periods = periods_list(organization=organization, state=state, now=now)
    if not 0 <= period_index < len(periods):
        raise Http404("No such period.")
    period = periods[period_index]
    until = min(now, period.end) if period.current else period.end
    zone = ZoneInfo(organization.timezone)
    spend, per_meter = (None, {})
    if period.current and state is not None:
        spend, per_meter = spend_current(organization=organization, state=state, period=period, until=until)
    meters = []
    for meter in meter_list():
        grouped, days = usage_with_days(
            meter=meter,
            customer=organization.external_id,
            start=period.start,
            end=until,
            zone=zone,
            group_by=bool(meter.group_by),
            live_until=period.end if period.current else None,
        )
        meters.append(
            MeterUsage(
                meter=meter,
                value=grouped.value,
                days=days,
                groups=[(_group_label(g["group"]), g["value"]) for g in grouped.groups],
                amount=per_meter.get(meter.code),
            )
        )
    invoices = list(
        Invoice.objects.filter(organization=organization, status__in=FINAL_STATUSES, period_start=period.start)
        .exclude(status="void")
        .order_by("id")
    )
    return Dashboard(organization, subscription, periods, period, until, meters, spend, invoices)


# --- billing history ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    kind: str  # "invoice" | "credit_note"
    number: str
    date: datetime
    status: str
    currency: str
    total: Decimal
    amount_due: Decimal | None
    invoice: Invoice  # the invoice itself, or the one the credit note is against

    period_label: str = ""  # the invoice's billing period as local dates, last day included

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


# Short words for a table cell (the model's labels explain more than a cell holds).
STATUS_LABELS = {"open": "Open", "paid": "Paid", "void": "Void", "uncollectible": "Uncollectible", "issued": "Issued"}


def billing_history_list(*, organization: Organization) -> list[HistoryRow]:
    """The organization's finalized invoices and its credit notes, newest first. Drafts are the
    seller's working state and never shown."""
    invoices = list(
        Invoice.objects.filter(organization=organization, status__in=FINAL_STATUSES).order_by("-issued_at", "-id")
    )
    notes = CreditNote.objects.filter(invoice__organization=organization).select_related("invoice")
    zone = ZoneInfo(organization.timezone)

    def label(i: Invoice) -> str:
        if i.period_start is None or i.period_end is None:
            return ""
        last = (i.period_end - timedelta(microseconds=1)).astimezone(zone)
        return f"{i.period_start.astimezone(zone):%-d %b %Y} \u2013 {last:%-d %b %Y}"

    rows = [
        HistoryRow(
            "invoice",
            i.number or "",
            i.issued_at or i.created_at,
            i.status,
            i.currency,
            i.total,
            i.amount_due,
            i,
            label(i),
        )
        for i in invoices
    ]
    rows += [
        HistoryRow("credit_note", n.number, n.created_at, "issued", n.currency, n.total, None, n.invoice) for n in notes
    ]
    return sorted(rows, key=lambda r: r.date, reverse=True)


def invoice_for_download_get(*, organization: Organization, invoice_id: int) -> Invoice:
    """A finalized invoice of this organization, or a 404 (a draft, another organization's, none)."""
    invoice = Invoice.objects.filter(
        Q(pk=invoice_id) & Q(organization=organization) & Q(status__in=FINAL_STATUSES)
    ).first()
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


# --- projection ---------------------------------------------------------------------------------


@dataclass
class MeterProjection:
    meter: Meter
    projection: Projection
    amounts: tuple[Decimal, Decimal, Decimal] | None  # priced (low, expected, high) of the period


@dataclass
class Forecast:
    organization: Organization
    subscription: Subscription | None
    period: Period
    now: datetime
    meters: list[MeterProjection]
    totals: tuple[Decimal, Decimal, Decimal] | None  # the period's charges, before tax
    preview: list[InvoiceDraft]
    problem: str = ""


def _scaled(figures: UsageFigures, factor: Decimal) -> UsageFigures:
    if factor == 1:
        return figures
    values = None
    if figures.event_values is not None:
        # A percentage price is priced per event: the events seen so far stand for the ones to
        # come, repeated in order until the projected count is reached.
        values = {}
        for key, seen in figures.event_values.items():
            target = int((len(seen) * factor).to_integral_value())
            values[key] = [seen[i % len(seen)] for i in range(target)] if seen else []
    return UsageFigures(
        value=None if figures.value is None else figures.value * factor,
        groups={k: None if v is None else v * factor for k, v in figures.groups.items()},
        event_values=values,
    )


def _adjust(factors: dict[int, Decimal], period: Period) -> Callable:
    def adjust(usage: dict[UsageRequest, UsageFigures]) -> dict[UsageRequest, UsageFigures]:
        # Only the period's own usage is projected; late-usage corrections of earlier windows
        # are what they are.
        return {
            request: _scaled(figures, factors.get(request.meter_id, Decimal(1)))
            if request.start >= period.start
            else figures
            for request, figures in usage.items()
        }

    return adjust


def forecast_get(*, organization: Organization, now: datetime | None = None) -> Forecast:
    """Each meter's end-of-period usage (portal.projection) and the period's charges priced at
    the low, expected and high projections, beside the upcoming-invoice preview."""
    now = now or dj_timezone.now()
    subscription = subscription_current_get(organization=organization)
    state = _state_of(subscription)
    period = periods_list(organization=organization, state=state, now=now, count=1)[0]
    zone = ZoneInfo(organization.timezone)
    until = min(now, period.end)
    today = now.astimezone(zone).date()
    elapsed = int((until - period.start).total_seconds())
    remaining = int((period.end - until).total_seconds())
    meters = []
    for meter in meter_list():
        days = []
        if meter.aggregation in ADDITIVE:
            usage, daily = usage_with_days(
                meter=meter,
                customer=organization.external_id,
                start=period.start,
                end=until,
                zone=zone,
                live_until=period.end,
            )
            so_far = usage.value
            # whole days only: the first day counts if the period started at its midnight
            days = [v or _ZERO for d, v in daily if d < today]
        else:
            so_far = usage_get(meter=meter, customer=organization.external_id, start=period.start, end=until).value
        meters.append(
            MeterProjection(
                meter,
                project(
                    aggregation=meter.aggregation,
                    so_far=so_far,
                    full_days=days,
                    elapsed_seconds=elapsed,
                    remaining_seconds=remaining,
                ),
                None,
            )
        )
    forecast = Forecast(organization, subscription, period, now, meters, None, [])
    if state is None:
        return forecast
    try:
        forecast.preview = invoice_preview_get(organization=organization, states={subscription.pk: state})
        invoiced = _invoiced_for(organization, period)
        factors = [{m.meter.pk: m.projection.factors()[which] for m in meters} for which in range(3)]
        priced = [
            (lines, invoiced + sum((line.amount.amount for line in lines), _ZERO))
            for lines in period_charges(state=state, period=period, until=until, factors=factors)  # low, expected, high
        ]
        forecast.totals = (priced[0][1], priced[1][1], priced[2][1])
        for m in meters:
            if any(line.meter_code == m.meter.code for line in priced[1][0]):
                low, mid, high = (
                    sum((line.amount.amount for line in lines if line.meter_code == m.meter.code), _ZERO)
                    for lines, _ in priced
                )
                m.amounts = (low, mid, high)
    except DomainError as exc:
        forecast.problem = exc.message
    return forecast
