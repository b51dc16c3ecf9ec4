from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "invoicing"
    verbose_name = "Invoicing"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        import invoicing.metrics  # noqa: F401  (every process exposes the billing-run metrics)
        from billing.hooks import billed_provider_set, coupon_used_provider_set, fees_provider_set
        from invoicing import models as m
        from invoicing.selectors.billed import billed_usage_get, coupon_used_get, fees_billed_get

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

        def fees(state):
            # Previews in billing: what this subscription's non-void invoices billed of base fees
            # (the credit for unused time gives back only that).
            since = state.billed_through or state.started_at
            return fees_billed_get(subscription_ids=[state.id], since=since).get(state.id, [])

        fees_provider_set(fees)
