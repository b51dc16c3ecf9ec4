"""After finalization: the PDF, rendered and stored once, and the invoice email with it."""

from __future__ import annotations


def invoice_deliver(*, invoice_id: int) -> None:
    from invoicing.services.pdf import invoice_email_send, invoice_pdf_store

    from invoicing.models import Invoice

    invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
    invoice_pdf_store(invoice=invoice)
    invoice_email_send(invoice=invoice)
