"""Reads of dunning: the policy that applies to an invoice, and the organization's entitlement
(cached; every transition deletes the cache entry on commit)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from django.core.cache import cache
from django.db.models import Sum
from django.utils import timezone

from billing.models import UsageLimitReached
from core.errors import DomainError
from core.money import Money
from dunning.models import CaseStage, DunningAccount, DunningCase, DunningPolicy, DunningStatus, DunningStep
from dunning.policy import DEFAULT, PLAN_CHANGES, Policy, policy_from_row
from invoicing.formatting import DATE_FORMAT, DEFAULT_LOCALE

ENTITLEMENT_TTL = 3600  # a transition deletes the entry; the TTL only bounds a lost delete


def policy_for(*, organization_id: int, plan_id: int | None) -> Policy:
    rows = {
        ("org" if row.organization_id else "plan" if row.plan_id else "tenant"): row
        for row in DunningPolicy.objects.filter(organization_id=organization_id)
        | DunningPolicy.objects.filter(plan_id=plan_id if plan_id else -1)
        | DunningPolicy.objects.filter(plan__isnull=True, organization__isnull=True)
    }
    row = rows.get("org") or rows.get("plan") or rows.get("tenant")
    return policy_from_row(row) if row else DEFAULT


def policy_for_invoice(invoice) -> Policy:
    from billing.models import Subscription

    plan_id = (
        Subscription.objects.filter(pk=invoice.subscription_id).values_list("plan_version__plan_id", flat=True).first()
    )
    return policy_for(organization_id=invoice.organization_id, plan_id=plan_id)


def policies_for_invoices(invoices) -> dict[int, Policy]:
    """policy_for_invoice for many invoices in two queries (a sweep's)."""
    from billing.models import Subscription

    rows = list(DunningPolicy.objects.all())
    tenant = next((r for r in rows if not r.plan_id and not r.organization_id), None)
    by_org = {r.organization_id: r for r in rows if r.organization_id}
    by_plan = {r.plan_id: r for r in rows if r.plan_id}
    plans = (
        dict(
            Subscription.objects.filter(pk__in={i.subscription_id for i in invoices if i.subscription_id}).values_list(
                "pk", "plan_version__plan_id"
            )
        )
        if by_plan
        else {}
    )
    chosen = {}
    for invoice in invoices:
        row = by_org.get(invoice.organization_id) or by_plan.get(plans.get(invoice.subscription_id)) or tenant
        chosen[invoice.pk] = policy_from_row(row) if row else DEFAULT
    return chosen


def entitlement_key(organization_id: int) -> str:
    return f"dunning:entitlement:{organization_id}"


def blocked_meters_get(*, organization_id: int, now: datetime) -> list[dict]:
    """Meters whose hard usage limit the organization reached this period (issue 13 flow 7,
    recorded by portal.alerts); each unblocks at `until`, its period's end."""
    rows = list(
        UsageLimitReached.objects.filter(
            organization_id=organization_id, hard=True, period_start__lte=now, period_end__gt=now
        )
        .select_related("meter")
        .order_by("meter__code")
    )
    return [
        {
            "meter": row.meter.code,
            "limit": f"{row.limit.normalize():f}",
            "source": row.source,
            "until": row.period_end.isoformat(),
        }
        for row in rows
    ]


def entitlement_compute(*, organization_id: int, now: datetime | None = None) -> dict:
    meters = blocked_meters_get(organization_id=organization_id, now=now or timezone.now())
    account = DunningAccount.objects.filter(organization_id=organization_id).first()
    if account is None or account.status == DunningStatus.ACTIVE:
        return {
            "status": "active",
            "serve": True,
            "blocked_features": [],
            "blocked_meters": meters,
            "since": None,
            "reason": "",
        }
    return {
        "status": account.status,
        "serve": account.status == DunningStatus.PAST_DUE,
        "blocked_features": list(account.blocked_features),
        "blocked_meters": meters,
        "since": account.since.isoformat() if account.since else None,
        "reason": account.reason,
    }


def entitlement_get(*, organization_id: int) -> dict:
    """Whether the seller's product should serve the organization, and why. Cached per tenant
    (the cache's keys carry the schema) and organization."""
    key = entitlement_key(organization_id)
    value = cache.get(key)
    if value is None:
        now = timezone.now()
        value = entitlement_compute(organization_id=organization_id, now=now)
        ttl = ENTITLEMENT_TTL
        if value["blocked_meters"]:
            # A meter blocked by a usage limit unblocks when its period ends: the entry must not
            # outlive that (nothing else deletes it then).
            until = min(datetime.fromisoformat(m["until"]) for m in value["blocked_meters"])
            ttl = max(1, min(ttl, math.ceil((until - now).total_seconds())))
        cache.set(key, value, ttl)
    return value


@dataclass(frozen=True)
class PlanChangeBlock:
    """Why an organization may not change its plan now: since when, for which overdue invoices
    (their numbers), and the sentence said to the customer (the API's error message, the portal's
    plan page)."""

    since: datetime
    invoices: tuple[str, ...]
    message: str


def plan_change_block_get(*, organization_id: int) -> PlanChangeBlock | None:
    """None when the organization may change its plan. Read from the database, not the
    entitlement's cache: this guards a write (billing's plan change, through billing.hooks)."""
    account = DunningAccount.objects.filter(organization_id=organization_id).select_related("organization").first()
    if account is None or PLAN_CHANGES not in account.blocked_features:
        return None
    open_cases = DunningCase.objects.filter(organization_id=organization_id, closed_at=None)
    restricting = open_cases.exclude(stage=CaseStage.PAST_DUE)
    # Since the first restriction of a case still open (its `stage:restricted` step; a run that
    # skipped days writes it with the later stages, at the same instant).
    first = (
        DunningStep.objects.filter(invoice__dunning_case__in=restricting, step=f"stage:{CaseStage.RESTRICTED}")
        .order_by("at")
        .values_list("at", flat=True)
        .first()
    )
    since = first or account.since or account.updated_at
    numbers = tuple(restricting.order_by("started_at", "id").values_list("invoice__number", flat=True))
    day = since.astimezone(ZoneInfo(account.organization.timezone or "UTC")).date()
    invoices = ", ".join(numbers) or "an invoice"
    message = (
        f"Plan changes are blocked since {format_date(day, DATE_FORMAT, locale=DEFAULT_LOCALE)} because "
        f"invoice {invoices} is overdue: they are possible again once it is paid."
    )
    return PlanChangeBlock(since=since, invoices=numbers, message=message)


def plan_change_gate(organization_id: int, at: datetime) -> None:
    """billing.hooks' plan-change gate (installed in DunningConfig.ready): refuses, 409
    `dunning_blocks_plan_change`, from the policy's `plan_changes_blocked_day` until every
    overdue invoice is settled. Cancelling is not a plan change and stays possible."""
    block = plan_change_block_get(organization_id=organization_id)
    if block is not None:
        raise DomainError(block.message, code="dunning_blocks_plan_change", status_code=409)


@dataclass(frozen=True)
class Restriction:
    """Something the customer loses: `what` ("plan changes", "usage"), from `at`, `taken` once it
    has happened (else the policy's day for it, still to come)."""

    what: str
    at: datetime
    taken: bool


@dataclass(frozen=True)
class DunningBanner:
    """What the portal says on every page of an organization in dunning: its state, what it owes
    on its overdue invoices (one Money per currency), what is or will be blocked and from when,
    and the oldest overdue invoice (the pay-now link)."""

    status: str
    overdue: tuple[Money, ...]
    restrictions: tuple[Restriction, ...]
    oldest_invoice_id: int
    oldest_invoice_number: str


def dunning_banner_get(*, organization_id: int) -> DunningBanner | None:
    """None when the organization is not in dunning (or none of its cases is open)."""
    account = DunningAccount.objects.filter(organization_id=organization_id).first()
    if account is None or account.status == DunningStatus.ACTIVE:
        return None
    cases = list(
        DunningCase.objects.filter(organization_id=organization_id, closed_at=None)
        .select_related("invoice")
        .order_by("started_at", "id")
    )
    if not cases:
        return None
    oldest = cases[0]
    overdue = tuple(
        Money(row["due"], row["invoice__currency"])
        for row in DunningCase.objects.filter(organization_id=organization_id, closed_at=None)
        .values("invoice__currency")
        .annotate(due=Sum("invoice__amount_due"))
        .order_by("invoice__currency")
    )
    taken = dict(
        DunningStep.objects.filter(invoice_id__in=[c.invoice_id for c in cases], step__startswith="stage:")
        .order_by("-at")
        .values_list("step", "at")
    )  # the earliest of each stage (later rows first, so the earliest wins)
    policy = policy_for_invoice(oldest.invoice)
    restrictions = []
    for what, stage, day in (
        ("plan changes", CaseStage.RESTRICTED, policy.plan_changes_blocked_day),
        ("usage", CaseStage.SUSPENDED, policy.suspend_day),
    ):
        at = taken.get(f"stage:{stage}")
        restrictions.append(
            Restriction(what, at, True) if at else Restriction(what, oldest.started_at + timedelta(days=day), False)
        )
    return DunningBanner(
        status=account.status,
        overdue=overdue,
        restrictions=tuple(restrictions),
        oldest_invoice_id=oldest.invoice_id,
        oldest_invoice_number=oldest.invoice.number,
    )
