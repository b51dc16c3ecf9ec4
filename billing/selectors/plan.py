from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.api.principal import ApiPrincipal
from billing.models import Plan, Subscription, SubscriptionPhase
from billing.selectors.organization import organization_list


def plan_list(*, principal: ApiPrincipal) -> QuerySet[Plan]:
    """The plans this caller may see: all of the tenant's for staff and machine credentials. A
    customer member sees the plans on offer (active) and those their organizations' subscriptions
    are, were or will be on, even if retired, never the seller's other inactive plans."""
    plans = Plan.objects.all()
    if principal.is_customer_member:
        organizations = organization_list(principal=principal)
        phases = SubscriptionPhase.objects.filter(subscription__organization__in=organizations)
        current = Subscription.objects.filter(organization__in=organizations)
        plans = plans.filter(
            Q(is_active=True)
            | Q(pk__in=phases.values("plan_version__plan"))
            | Q(pk__in=current.values("plan_version__plan"))
        )
    return plans
