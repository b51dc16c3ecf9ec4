from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self):
        from metering.live import usage_listener_add
        from portal.alerts import usage_changed, usage_emails_register

        # Alerts and usage caps are evaluated from the drain path (portal.alerts).
        usage_listener_add(usage_changed)
        usage_emails_register()
