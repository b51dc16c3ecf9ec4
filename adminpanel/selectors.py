from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from billing.models import Organization, OrganizationStatus, Subscription, SubscriptionStatus


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
