"""After finalization: the PDF, rendered and stored once, and the invoice email with it."""

from __future__ import annotations

from invoicing.models import Invoice
from invoicing.services.pdf import invoice_email_send, invoice_pdf_store


def invoice_deliver(*, invoice_id: int) -> None:
    invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
    invoice_pdf_store(invoice=invoice)
    invoice_email_send(invoice=invoice)
