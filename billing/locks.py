"""Row locks for billing, always taken in one order (organization, then subscription) so two
services never wait on each other in opposite orders."""

from __future__ import annotations

from billing.models import Organization, Subscription


def organization_lock(organization_id: int) -> Organization:
    return Organization.objects.select_for_update().get(pk=organization_id)


def subscription_lock(subscription_id: int) -> Subscription:
    """The subscription, locked after its organization."""
    organization_id = Subscription.objects.values_list("organization_id", flat=True).get(pk=subscription_id)
    organization_lock(organization_id)
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("organization", "plan_version__plan")
        .get(pk=subscription_id)
    )
