from django.apps import AppConfig
from django.core import checks


def hooks_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Every billing hook has its provider once all apps are ready: a preview made without one
    would silently differ from the invoice (billing.hooks)."""
    from billing.hooks import hooks_missing

    return [
        checks.Error(
            f"billing.hooks: no {name!r} provider is installed.",
            hint="invoicing installs it in InvoicingConfig.ready; add 'invoicing' to INSTALLED_APPS.",
            id="billing.E001",
        )
        for name in hooks_missing()
    ]


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from billing import models as m

        checks.register(hooks_check)

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
