"""Putting an organization on a plan version."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.utils import timezone

from billing.models import (
    BillingMode,
    Organization,
    OrganizationStatus,
    PlanVersion,
    Subscription,
    SubscriptionStatus,
)
from billing.periods import anniversary_period_containing, calendar_period_containing
from tenants.errors import DomainError


def subscription_create(
    *,
    actor,
    organization: Organization,
    plan_version: PlanVersion,
    start_at: datetime | None = None,
    billing_mode: str = BillingMode.CALENDAR,
) -> Subscription:
    """Subscribe now or from a date. Calendar billing anchors on the 1st of the period the start
    falls in (the first period runs from the start to the next 1st and is prorated); anniversary
    billing anchors on the start itself. A plan with trial days starts in `trialing` until the
    same local time `trial_days` later."""
    plan = plan_version.plan
    start_at = start_at or timezone.now()
    if start_at.tzinfo is None:
        raise DomainError("start_at needs a UTC offset.", code="invalid_datetime")
    if organization.status == OrganizationStatus.CLOSED:
        raise DomainError("A closed organization cannot subscribe.", code="organization_closed")
    if not plan.is_active:
        raise DomainError(f"Plan {plan.code!r} is not open to new subscriptions.", code="plan_inactive")
    if plan.currency != organization.currency:
        raise DomainError(
            f"The plan bills in {plan.currency}; the organization is billed in {organization.currency}.",
            code="currency_mismatch",
        )
    if billing_mode not in BillingMode.values:
        raise DomainError(f"billing_mode must be one of {BillingMode.values}.", code="invalid_billing_mode")
    tz = organization.timezone
    if billing_mode == BillingMode.ANNIVERSARY:
        anchor = start_at
        _, end = anniversary_period_containing(anchor=anchor, timezone=tz, interval=plan.interval, instant=start_at)
    else:
        anchor, end = calendar_period_containing(instant=start_at, timezone=tz, interval=plan.interval)
    trial_end = None
    if plan_version.trial_days:
        local_start = start_at.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
        trial_end = (local_start + relativedelta(days=plan_version.trial_days)).replace(tzinfo=ZoneInfo(tz))
    with transaction.atomic():
        Organization.objects.select_for_update().get(pk=organization.pk)
        return Subscription.objects.create(
            organization=organization,
            plan_version=plan_version,
            status=SubscriptionStatus.TRIALING if trial_end else SubscriptionStatus.ACTIVE,
            billing_mode=billing_mode,
            billing_anchor=anchor,
            started_at=start_at,
            current_period_start=start_at,
            current_period_end=end,
            trial_end=trial_end,
        )
