from billing.models.membership import MemberRole, Membership
from billing.models.organization import Organization, OrganizationStatus
from billing.models.plan import BaseFeeTiming, Plan, PlanCharge, PlanInterval, PlanVersion
from billing.models.subscription import BillingMode, Subscription, SubscriptionStatus

__all__ = [
    "BaseFeeTiming",
    "BillingMode",
    "MemberRole",
    "Membership",
    "Organization",
    "OrganizationStatus",
    "Plan",
    "PlanCharge",
    "PlanInterval",
    "PlanVersion",
    "Subscription",
    "SubscriptionStatus",
]
