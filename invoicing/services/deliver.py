"""After finalization: the PDF, rendered and stored once, and the invoice email with it.

Finalization writes one `invoice.deliver` outbox message per invoice (key `invoice:<id>`) in its
own transaction; the outbox dispatches them on commit in batches of 50 per task, and its sweep
re-finds any whose dispatch was lost. The handler renders and sends outside any row lock; it is
idempotent on the invoice itself (the stored PDF, then `emailed_at`), so a message run twice
after a crash sends one email (core.services.outbox states the contract)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from core.models import OutboxMessage
from core.services.outbox import OutboxItem, outbox_add_bulk, outbox_register
from invoicing.models import Invoice

DELIVER_KIND = "invoice.deliver"
# SMTP outages are usually short: retry soon, then spread out over about a day; dead after that
# (the admin's outbox list shows it; "Retry now" sends it).
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180, 360, 720))
# Above a render (≤ a few seconds) plus the SMTP timeout: a live worker never loses its claim.
LEASE = timedelta(minutes=10)


def invoice_deliver(*, invoice_id: int) -> None:
    # WeasyPrint: only where PDFs are made
    from invoicing.services.invoice_email import invoice_email_send
    from invoicing.services.pdf_store import invoice_pdf_store

    invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
    invoice_pdf_store(invoice=invoice)
    invoice_email_send(invoice=invoice)


def invoice_deliveries_add(invoice_ids: Iterable[int]) -> list[int]:
    """In the finalizing transaction: one delivery message per invoice."""
    return outbox_add_bulk(
        OutboxItem(kind=DELIVER_KIND, key=f"invoice:{invoice_id}", payload={"invoice_id": invoice_id})
        for invoice_id in invoice_ids
    )


def _handle(message: OutboxMessage) -> None:
    invoice_deliver(invoice_id=message.payload["invoice_id"])


def invoice_delivery_register() -> None:
    outbox_register(DELIVER_KIND, handler=_handle, retry_delays=RETRY_DELAYS, lease=LEASE)
