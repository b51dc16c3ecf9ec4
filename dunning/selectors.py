"""Reads of dunning: the policy that applies to an invoice, and the organization's entitlement
(cached; every transition deletes the cache entry on commit)."""

from __future__ import annotations

from django.core.cache import cache

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


def entitlement_compute(*, organization_id: int) -> dict:
    account = DunningAccount.objects.filter(organization_id=organization_id).first()
    if account is None or account.status == DunningStatus.ACTIVE:
        return {"status": "active", "serve": True, "blocked_features": [], "since": None, "reason": ""}
    return {
        "status": account.status,
        "serve": account.status == DunningStatus.PAST_DUE,
        "blocked_features": list(account.blocked_features),
        "since": account.since.isoformat() if account.since else None,
        "reason": account.reason,
    }


def entitlement_get(*, organization_id: int) -> dict:
    """Whether the seller's product should serve the organization, and why. Cached per tenant
    (the cache's keys carry the schema) and organization."""
    key = entitlement_key(organization_id)
    value = cache.get(key)
    if value is None:
        value = entitlement_compute(organization_id=organization_id)
        cache.set(key, value, ENTITLEMENT_TTL)
    return value
