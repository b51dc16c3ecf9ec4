"""Reads of dunning: the policy that applies to an invoice, and the organization's entitlement
(cached; every transition deletes the cache entry on commit)."""

from __future__ import annotations

import math
from datetime import datetime

from django.core.cache import cache
from django.utils import timezone

from billing.models import UsageLimitReached
from dunning.models import DunningAccount, DunningPolicy, DunningStatus
from dunning.policy import DEFAULT, Policy, policy_from_row

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
