"""What the portal's plan page reads: the plans a customer may switch to, and whether the
organization may change its plan now. Prices and bills come from billing's own services (the
previews of billing.services.subscription); nothing here prices anything."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from billing.models import Organization, PlanVersion, Subscription
from dunning.selectors import plan_change_block_get


@dataclass(frozen=True)
class PlanChangeGate:
    """Whether the organization may change its plan from the portal now; when not, `reason` is
    the sentence the page shows."""

    allowed: bool
    reason: str = ""


ALLOWED = PlanChangeGate(allowed=True)


def plan_change_gate_get(*, organization: Organization) -> PlanChangeGate:
    """The portal's one question to dunning before a customer changes their plan: which states
    block what is dunning's policy (dunning.selectors.plan_change_block_get, the same rule
    billing's plan change enforces through billing.hooks); the plan page shows `reason`. Cancelling
    and resuming are not plan changes: the page keeps offering them meanwhile, as billing and the
    API allow them (a customer in dunning may leave; the overdue invoice stays owed)."""
    block = plan_change_block_get(organization_id=organization.pk)
    return ALLOWED if block is None else PlanChangeGate(allowed=False, reason=block.message)


def plan_options_list(*, organization: Organization, subscription: Subscription | None) -> list[PlanVersion]:
    """The latest version of each plan the customer may switch to: active, marked self-serve by
    the seller, in the organization's currency (the subscription's, when it has one: a plan
    change never changes currency), other than the plan it is on. Ordered by base fee."""
    currency = subscription.plan_version.plan.currency if subscription is not None else organization.currency
    latest = PlanVersion.objects.filter(plan=OuterRef("plan")).order_by("-version").values("pk")[:1]
    versions = PlanVersion.objects.filter(
        plan__is_active=True, plan__self_serve=True, plan__currency=currency, pk=Subquery(latest)
    ).select_related("plan")
    if subscription is not None:
        versions = versions.exclude(plan_id=subscription.plan_version.plan_id)
    return sorted(versions, key=lambda v: (v.base_fee, v.plan.code))


def plan_option_get(*, organization: Organization, subscription: Subscription | None, code: str) -> PlanVersion | None:
    """The option with plan code `code`, or None when it is not one the customer may choose."""
    return next(
        (v for v in plan_options_list(organization=organization, subscription=subscription) if v.plan.code == code),
        None,
    )
