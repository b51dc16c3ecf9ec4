from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "invoicing"
    verbose_name = "Invoicing"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from billing.hooks import billed_provider_set, coupon_used_provider_set
        from invoicing import models as m
        from invoicing.selectors.billed import billed_usage_get, coupon_used_get

        for model in (m.Invoice, m.CreditNote, m.InvoicingSettings):
            auditlog.register(model, exclude_fields=["updated_at"])

        def coupon_used(state, point):
            # Previews in billing: what fixed coupons gave on this subscription's other invoices.
            used = coupon_used_get(subscription_ids=[state.id], exclude_points=[point])
            return used.get(state.id, {})

        coupon_used_provider_set(coupon_used)

        from invoicing.services.deliver import invoice_delivery_register

        invoice_delivery_register()  # the outbox handler of `invoice.deliver`

        def billed(state):
            # Previews in billing: what this subscription's finalized invoices billed (for the
            # correction lines of late usage; billing.bill.corrections_due picks the windows).
            return billed_usage_get(subscription_ids=[state.id], since=state.started_at).get(state.id, [])

        billed_provider_set(billed)
