"""The seller's usage limits per plan (issue 13 flow 7): set as a whole list through the API or
one row at a time in the admin. Hard: the portal's evaluation (portal.alerts) blocks a meter in
the organization's entitlement once a period's usage reaches its plan's limit.

A raised or removed limit lifts at once the blocks it recorded this period (billing.hooks'
`plan_limits_raised` listeners, installed by the portal, which evaluates those organizations again
under the new limit); a lowered one blocks at the organization's next event."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from accounts.audit import Actor, audit_actor, audit_event
from billing.hooks import plan_limits_raised_run
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
        before = dict(PlanUsageLimit.objects.filter(plan=plan).values_list("meter_id", "limit"))
        PlanUsageLimit.objects.filter(plan=plan).delete()
        rows = PlanUsageLimit.objects.bulk_create(
            [PlanUsageLimit(plan=plan, meter=meters[code], limit=limit) for code, limit in limits]
        )
        audit_event(plan, event="plan.limits_set", limits={code: f"{limit.normalize():f}" for code, limit in limits})
        after = {meters[code].pk: limit for code, limit in limits}
        plan_limits_raised_on_commit(plan_id=plan.pk, before=before, after=after)
    return rows


def plan_limits_raised_on_commit(*, plan_id: int, before: dict[int, Decimal], after: dict[int, Decimal]) -> None:
    """Tell the listeners, once the change commits, which meters' limits (meter id -> limit)
    went up or away."""
    raised = sorted(meter_id for meter_id, limit in before.items() if meter_id not in after or after[meter_id] > limit)
    if raised:
        transaction.on_commit(lambda: plan_limits_raised_run(plan_id=plan_id, meter_ids=raised))
