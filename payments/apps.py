from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from invoicing.hooks import finalized_hook_add
        from payments.gateways import gateway_settings_forget
        from payments.models import GatewaySettings
        from payments.services.collection import collection_register, collections_enqueue
        from payments.services.emails import payment_emails_register
        from payments.services.refunds import refund_register

        post_save.connect(gateway_settings_forget, sender=GatewaySettings, dispatch_uid="gateway_settings_forget")
        post_delete.connect(gateway_settings_forget, sender=GatewaySettings, dispatch_uid="gateway_settings_forget")
        collection_register()
        payment_emails_register()
        refund_register()
        finalized_hook_add(collections_enqueue)
