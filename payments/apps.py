from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from invoicing.hooks import finalized_hook_add
        from payments.services.collection import collection_register, collections_enqueue
        from payments.services.emails import payment_emails_register
        from payments.services.refunds import refund_register

        collection_register()
        payment_emails_register()
        refund_register()
        finalized_hook_add(collections_enqueue)
