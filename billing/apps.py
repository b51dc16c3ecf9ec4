from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from billing import models as m

        for model in (
            m.Organization,
            m.Membership,
            m.Plan,
            m.PlanVersion,
            m.PlanCharge,
            m.Subscription,
            m.SubscriptionPhase,
            m.Coupon,
            m.CouponRedemption,
            m.CreditEntry,
        ):
            auditlog.register(model)
