from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from billing.models import Membership, Organization, Plan, PlanCharge, PlanVersion, Subscription

        for model in (Organization, Membership, Plan, PlanVersion, PlanCharge, Subscription):
            auditlog.register(model)
