from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from adminpanel.models import StaffNote
from billing.models import CreditEntry, Organization, OrganizationStatus, Subscription, SubscriptionStatus
from billing.selectors.credit import credit_balance_get
from core.money import Money
from dunning.models import CaseResolution, CaseStage, DunningAccount, DunningCase, DunningStatus
from invoicing.models import CreditNote, Invoice
from metering.models import Meter
from metering.selectors.meter import meter_list
from metering.selectors.usage import usage_get
from payments.models import Payment, Refund


@dataclass(frozen=True)
class StaffOverview:
    organizations: int
    organizations_active: int
    organizations_past_due: int
    subscriptions_live: int


def staff_overview_get() -> StaffOverview:
    counts = Organization.objects.aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(status=OrganizationStatus.ACTIVE)),
        past_due=Count("id", filter=Q(status=OrganizationStatus.PAST_DUE)),
    )
    live = Subscription.objects.filter(
        status__in=[SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE]
    ).count()
    return StaffOverview(counts["total"], counts["active"], counts["past_due"], live)


# --- customer 360 ------------------------------------------------------------------------------


def organization_search(query: str) -> QuerySet[Organization]:
    """Organizations whose name, external id or billing email contains `query` (case-insensitive),
    or all of them: by name, for the paginated search page."""
    organizations = Organization.objects.order_by("name", "pk")
    query = query.strip()
    if query:
        organizations = organizations.filter(
            Q(name__icontains=query) | Q(external_id__icontains=query) | Q(billing_email__icontains=query)
        )
    return organizations


@dataclass(frozen=True)
class Organization360:
    organization: Organization
    subscriptions: list[Subscription]
    invoices: list[Invoice]
    payments: list[Payment]
    credit_entries: list[CreditEntry]
    credit_notes: list[CreditNote]  # with the refund that paid each back, if any
    credit_balance: Money
    dunning: DunningAccount | None
    dunning_cases: list[DunningCase]
    notes: list[StaffNote]
    audit: list[LogEntry]


PAGE_ROWS = 50  # the newest rows of each list on the organization page


def organization_audit_entries(organization: Organization) -> QuerySet[LogEntry]:
    """The audit trail of an organization: entries about it and about the rows that belong to it
    (subscriptions, invoices, credit notes, credit, payments, refunds, staff notes), newest first.
    Entries point at their object by content type and id, so each kind is one id list."""
    owned = {
        Organization: [organization.pk],
        Subscription: Subscription.objects.filter(organization=organization).values("pk"),
        Invoice: Invoice.objects.filter(organization=organization).values("pk"),
        CreditNote: CreditNote.objects.filter(invoice__organization=organization).values("pk"),
        CreditEntry: CreditEntry.objects.filter(organization=organization).values("pk"),
        Payment: Payment.objects.filter(organization=organization).values("pk"),
        Refund: Refund.objects.filter(payment__organization=organization).values("pk"),
        StaffNote: StaffNote.objects.filter(organization=organization).values("pk"),
    }
    types = ContentType.objects.get_for_models(*owned)
    match = Q()
    for model, ids in owned.items():
        match |= Q(content_type=types[model], object_id__in=ids)
    return LogEntry.objects.filter(match).select_related("actor", "content_type").order_by("-timestamp", "-pk")


def organization_360_get(organization: Organization) -> Organization360:
    return Organization360(
        organization=organization,
        subscriptions=list(
            organization.subscriptions.select_related("plan_version__plan").order_by("-started_at", "-pk")[:PAGE_ROWS]
        ),
        invoices=list(Invoice.objects.filter(organization=organization).order_by("-created_at", "-pk")[:PAGE_ROWS]),
        payments=list(
            Payment.objects.filter(organization=organization)
            .select_related("invoice")
            .order_by("-created_at", "-pk")[:PAGE_ROWS]
        ),
        credit_entries=list(
            CreditEntry.objects.filter(organization=organization).order_by("-created_at", "-pk")[:PAGE_ROWS]
        ),
        # a refund is one-to-one with its note: one query for both
        credit_notes=list(
            CreditNote.objects.filter(invoice__organization=organization)
            .select_related("invoice", "refund")
            .order_by("-created_at", "-pk")[:PAGE_ROWS]
        ),
        credit_balance=credit_balance_get(organization=organization),
        dunning=DunningAccount.objects.filter(organization=organization).first(),
        dunning_cases=list(
            DunningCase.objects.filter(organization=organization, closed_at=None)
            .select_related("invoice")
            .order_by("started_at")
        ),
        notes=list(StaffNote.objects.filter(organization=organization).select_related("author")[:PAGE_ROWS]),
        audit=list(organization_audit_entries(organization)[:PAGE_ROWS]),
    )


# --- audit log ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""  # part of the actor's email
    content_type: ContentType | None = None
    object_id: str = ""
    action: int | None = None  # LogEntry.Action
    event: str = ""  # a domain event's name (accounts.audit.audit_event), e.g. "subscription.upgrade"
    since: datetime | None = None
    until: datetime | None = None  # exclusive


def audit_entries_list(f: AuditFilter) -> QuerySet[LogEntry]:
    entries = LogEntry.objects.select_related("actor", "content_type").order_by("-timestamp", "-pk")
    if f.actor:
        entries = entries.filter(Q(actor_email__icontains=f.actor) | Q(actor__email__icontains=f.actor))
    if f.content_type is not None:
        entries = entries.filter(content_type=f.content_type)
    if f.object_id:
        entries = entries.filter(object_pk=f.object_id)
    if f.action is not None:
        entries = entries.filter(action=f.action)
    if f.event:
        # audit_event stores {"event": [None, name]}: JSON containment uses the GIN-free jsonb path.
        entries = entries.filter(changes__event__1=f.event)
    if f.since is not None:
        entries = entries.filter(timestamp__gte=f.since)
    if f.until is not None:
        entries = entries.filter(timestamp__lt=f.until)
    return entries


_RELATION_NOISE = re.compile(r"^[\w]+\.[\w]+\.None$")  # auditlog's text for a reverse relation
_STORED_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00)?$")


_STORED_DECIMAL = re.compile(r"^-?\d+\.\d{3,}$")  # a money or quantity column as stored (12 places)
_SNAPSHOT_TEXT_MAX = 160


def _decimal_text(text: str) -> str:
    """A stored decimal without its padding: "100.000000000000" -> "100.00", "0.125000" -> "0.125"
    (amounts keep two places; the currency is not in the entry, so no symbol)."""
    value = Decimal(text)
    cents = value.quantize(Decimal("0.01"))
    return f"{cents:f}" if cents == value else f"{value.normalize():f}"


def _mapping_text(mapping: dict) -> str:
    """A snapshot (an address, a customer's details) as "key: value" pairs of what it holds, not
    as a JSON dump; nested parts and empty values left out, cut at a readable length."""
    pairs = [
        f"{k}: {_value_text(v)}"
        for k, v in mapping.items()
        if v not in (None, "", [], {}) and not isinstance(v, (dict, list))
    ]
    text = ", ".join(pairs)
    return text if len(text) <= _SNAPSHOT_TEXT_MAX else text[: _SNAPSHOT_TEXT_MAX - 1] + "…"


def _value_text(value) -> str:
    """One side of a change as people read it: nothing for none, stored instants (UTC, as
    django-auditlog and audit_event write them) with their zone named, stored decimals without
    their padding, snapshots as their fields."""
    if value is None or value == "None":  # django-auditlog writes a created row's "before" as "None"
        return ""
    if isinstance(value, dict):
        return _mapping_text(value)
    text = str(value)
    if _STORED_INSTANT.match(text):
        instant = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return instant.strftime("%-d %b %Y %H:%M:%S UTC")
    if _STORED_DECIMAL.match(text):
        return _decimal_text(text)
    if text.startswith("{") and text.endswith("}"):  # django-auditlog stores a JSON field as its text
        try:
            parsed = json.loads(text)
        except ValueError:
            try:  # or as a Python dict's repr, for a field it saw as a dict
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return text
        if isinstance(parsed, dict):
            return _mapping_text(parsed)
    return text


def changes_text(entry: LogEntry) -> str:
    """An entry's changes as people read them ("status: active → closed; event: dunning.paused"),
    never raw JSON. django-auditlog's own changes_str fails on a None side, which domain events
    have; a created row's empty fields and reverse relations are left out."""
    changes = entry.changes if isinstance(entry.changes, dict) else {}
    parts = []
    for name, values in changes.items():
        if isinstance(values, list) and len(values) == 2:
            if any(isinstance(v, str) and _RELATION_NOISE.match(v) for v in values):
                continue
            before, after = (_value_text(v) for v in values)
            if not before and not after:
                continue
            parts.append(f"{name}: {before} → {after}" if before else f"{name}: {after}")
        else:
            parts.append(f"{name}: {values}")
    return "; ".join(parts)


# --- usage chart --------------------------------------------------------------------------------

USAGE_DAYS = 30


@dataclass(frozen=True)
class MeterDays:
    meter: Meter
    value: Decimal | None  # over the whole window
    days: list[tuple[date, Decimal | None]]

    @property
    def chart_id(self) -> str:
        return f"chart-{self.meter.code}"

    @property
    def chart(self) -> dict:
        """What static/src/staff.js reads (json_script): day labels, values as decimal text."""
        return {
            "label": self.meter.name,
            "labels": [day.strftime("%-d %b") for day, _ in self.days],
            "values": [None if value is None else str(value) for _, value in self.days],
        }


@dataclass(frozen=True)
class UsageWindow:
    start: datetime
    end: datetime  # exclusive: tomorrow's UTC midnight
    meters: list[MeterDays]

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()


def organization_usage_days(organization: Organization, *, now: datetime | None = None) -> UsageWindow:
    """Each meter's usage by the organization per UTC day over the last USAGE_DAYS days (today
    so far included): metering's day buckets, two statements a meter. Staff compare customers
    across timezones, so the days are UTC's (the portal shows the customer's own local days)."""
    now = now or timezone.now()
    end = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC)
    start = end - timedelta(days=USAGE_DAYS)
    meters = []
    for meter in meter_list():
        total = usage_get(meter=meter, customer=organization.external_id, start=start, end=end)
        series = usage_get(meter=meter, customer=organization.external_id, start=start, end=end, window="day")
        by_day = {point["start"].date(): point["value"] for point in series.series}
        days = [(day, by_day.get(day)) for day in (start.date() + timedelta(days=n) for n in range(USAGE_DAYS))]
        meters.append(MeterDays(meter=meter, value=total.value, days=days))
    return UsageWindow(start=start, end=end, meters=meters)


# --- dunning ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DunningStageRow:
    stage: str
    label: str
    invoices: int
    at_risk: list[Money]  # one per currency, by currency code


@dataclass(frozen=True)
class DunningOverview:
    month_start: datetime  # the first instant of this UTC month
    stages: list[DunningStageRow]
    invoices: int
    at_risk: list[Money]
    recovered: list[Money]  # paid on the invoices whose case closed as paid this month
    recovered_invoices: int
    closed_invoices: int  # cases closed this month, however
    recovery_rate: Decimal | None  # percent, None when no case closed this month


def _per_currency(rows, key: str) -> list[Money]:
    return [Money(row[key], row["invoice__currency"]) for row in rows]


def dunning_overview_get(*, now: datetime | None = None) -> DunningOverview:
    """The dunning view's figures in four queries. Recovery counts UTC calendar months (staff
    compare organizations across timezones); amounts stay per currency, never added across."""
    now = now or timezone.now()
    month_start = datetime.combine(now.astimezone(UTC).date().replace(day=1), time(), tzinfo=UTC)
    open_rows = list(
        DunningCase.objects.filter(closed_at=None)
        .values("stage", "invoice__currency")
        .annotate(n=Count("id"), due=Sum("invoice__amount_due"))
        .order_by("stage", "invoice__currency")
    )
    stages = [
        DunningStageRow(
            stage=stage.value,
            label=stage.label,
            invoices=sum(r["n"] for r in open_rows if r["stage"] == stage),
            at_risk=_per_currency([r for r in open_rows if r["stage"] == stage], "due"),
        )
        for stage in CaseStage
    ]
    totals: dict[str, Decimal] = {}
    for row in open_rows:
        totals[row["invoice__currency"]] = totals.get(row["invoice__currency"], Decimal(0)) + row["due"]
    closed = DunningCase.objects.filter(closed_at__gte=month_start, closed_at__lte=now)
    recovered = list(
        closed.filter(resolution=CaseResolution.PAID)
        .values("invoice__currency")
        .annotate(paid=Sum("invoice__amount_paid"))
        .order_by("invoice__currency")
    )
    counts = closed.aggregate(total=Count("id"), paid=Count("id", filter=Q(resolution=CaseResolution.PAID)))
    rate = (Decimal(100) * counts["paid"] / counts["total"]).quantize(Decimal("0.1")) if counts["total"] else None
    return DunningOverview(
        month_start=month_start,
        stages=stages,
        invoices=sum(r["n"] for r in open_rows),
        at_risk=[Money(amount, currency) for currency, amount in sorted(totals.items())],
        recovered=_per_currency(recovered, "paid"),
        recovered_invoices=counts["paid"],
        closed_invoices=counts["total"],
        recovery_rate=rate,
    )


def dunning_accounts_list() -> QuerySet[DunningAccount]:
    """Organizations that need staff's eye: not active, paused or suspended by staff; with their
    open cases counted and what those cases still owe (in the organization's currency), the
    longest in dunning first."""
    open_case = Q(organization__dunning_cases__closed_at=None)
    return (
        DunningAccount.objects.filter(~Q(status=DunningStatus.ACTIVE) | Q(paused=True) | Q(suspended_by_staff=True))
        .select_related("organization")
        .annotate(
            open_cases=Count("organization__dunning_cases", filter=open_case),
            due=Sum("organization__dunning_cases__invoice__amount_due", filter=open_case),
        )
        .order_by("since", "pk")
    )
