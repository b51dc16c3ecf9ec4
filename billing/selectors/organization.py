from __future__ import annotations

from django.db.models import QuerySet

from accounts.api.principal import ApiPrincipal
from billing.models import LIVE_STATUSES, Organization, Subscription


def organization_list(*, principal: ApiPrincipal) -> QuerySet[Organization]:
    """The organizations this caller may see: all of the tenant's for staff and machine
    credentials, only their own for customer members, only its own for an organization's key."""
    qs = Organization.objects.all()
    if principal.organization_id is not None:
        qs = qs.filter(pk=principal.organization_id)
    if principal.is_customer_member:
        qs = qs.filter(memberships__user=principal.user)
    return qs


def organization_visible_get(*, principal: ApiPrincipal, external_id: str) -> Organization | None:
    """The organization `external_id` if this caller may see it (organization_list)."""
    return organization_list(principal=principal).filter(external_id=external_id).first()


def organization_list_for_user(*, user) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user).order_by("name")


def subscription_current_get(*, organization: Organization) -> Subscription | None:
    return (
        Subscription.objects.select_related("plan_version__plan", "organization")
        .filter(organization=organization, status__in=LIVE_STATUSES)
        .order_by("-started_at")
        .first()
    )
