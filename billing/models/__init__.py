from billing.models.coupon import Coupon, CouponDuration, CouponRedemption, CouponTarget, DiscountType
from billing.models.credit import GRANT_KINDS, USE_KINDS, CreditEntry, CreditKind
from billing.models.limit import LimitSource, PlanUsageLimit, UsageCap, UsageLimitReached
from billing.models.membership import MemberRole, Membership
from billing.models.organization import Organization, OrganizationStatus
from billing.models.plan import BaseFeeTiming, Plan, PlanCharge, PlanInterval, PlanVersion
from billing.models.subscription import (
    LIVE_STATUSES,
    BillingMode,
    Subscription,
    SubscriptionPhase,
    SubscriptionStatus,
)

__all__ = [
    "GRANT_KINDS",
    "LIVE_STATUSES",
    "USE_KINDS",
    "BaseFeeTiming",
    "BillingMode",
    "Coupon",
    "CouponDuration",
    "CouponRedemption",
    "CouponTarget",
    "CreditEntry",
    "CreditKind",
    "DiscountType",
    "LimitSource",
    "MemberRole",
    "Membership",
    "Organization",
    "OrganizationStatus",
    "Plan",
    "PlanCharge",
    "PlanInterval",
    "PlanUsageLimit",
    "PlanVersion",
    "Subscription",
    "SubscriptionPhase",
    "SubscriptionStatus",
    "UsageCap",
    "UsageLimitReached",
]
