from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self):
        from billing.hooks import plan_limits_raised_add
        from metering.live import usage_listener_add
        from portal.alerts import plan_limits_raised, usage_changed, usage_emails_register

        # Alerts and usage caps are evaluated from the drain path (portal.alerts).
        usage_listener_add(usage_changed)
        usage_emails_register()
        # A plan's limit raised by the seller lifts what it blocked this period.
        plan_limits_raised_add(plan_limits_raised)
