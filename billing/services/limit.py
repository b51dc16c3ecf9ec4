"""The seller's usage limits per plan (issue 13 flow 7): set as a whole list through the API or
one row at a time in the admin. Hard: the portal's evaluation (portal.alerts) blocks a meter in
the organization's entitlement once a period's usage reaches its plan's limit.

A changed limit applies from the next evaluation: a raised limit does not unblock a meter already
blocked this period (the block is recorded for the period), a lowered one blocks at the
organization's next event."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from accounts.audit import Actor, audit_actor, audit_event
from billing.models import Plan, PlanUsageLimit
from core.errors import DomainError
from metering.models import Meter


def plan_limits_set(*, actor: Actor, plan: Plan, limits: list[tuple[str, Decimal]]) -> list[PlanUsageLimit]:
    """Replace the plan's limits with `limits` (meter code, most usage per period)."""
    meters = {m.code: m for m in Meter.objects.filter(code__in=[code for code, _ in limits])}
    seen: set[str] = set()
    for index, (code, limit) in enumerate(limits):
        if code not in meters:
            raise DomainError(f"No meter {code!r}.", code="unknown_meter", path=f"limits[{index}].meter")
        if code in seen:
            raise DomainError(f"Meter {code!r} is listed twice.", code="duplicate_meter", path=f"limits[{index}].meter")
        if limit < 0:
            raise DomainError("A limit cannot be negative.", code="not_positive", path=f"limits[{index}].limit")
        seen.add(code)
    with audit_actor(actor), transaction.atomic():
        Plan.objects.select_for_update().filter(pk=plan.pk).first()
        PlanUsageLimit.objects.filter(plan=plan).delete()
        rows = PlanUsageLimit.objects.bulk_create(
            [PlanUsageLimit(plan=plan, meter=meters[code], limit=limit) for code, limit in limits]
        )
        audit_event(plan, event="plan.limits_set", limits={code: f"{limit.normalize():f}" for code, limit in limits})
    return rows
