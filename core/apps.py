from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Outbox and webhooks"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from core.models import WebhookEndpoint
        from core.services.webhook_delivery import webhook_handler_register

        # The secrets are encrypted columns: the audit log must not copy them in clear or cipher.
        auditlog.register(WebhookEndpoint, exclude_fields=["secret_encrypted", "previous_secret_encrypted"])
        webhook_handler_register()
