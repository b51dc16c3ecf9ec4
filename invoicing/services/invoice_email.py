"""The invoice email, with its PDF, sent once per finalized invoice.

`invoice_email_send` sends outside any transaction or row lock, then records `emailed_at` with a
conditional update (`emailed_at IS NULL`). Deliveries run from the outbox
(invoicing.services.deliver), one claim per invoice at a time, and skip an invoice once
`emailed_at` is set, so a retried delivery sends one email. The one window left: a crash after
the mail server accepted the message and before `emailed_at` is written sends it again, with the
same Message-ID (at least once; mail clients collapse it).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.utils import DNS_NAME
from django.db import connection
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.audit import audit_event
from core.errors import DomainError
from core.faults import fault_point
from invoicing.formatting import DEFAULT_COLORS, HEX_COLOR, invoice_fmt
from invoicing.models import Invoice, InvoiceStatus
from invoicing.remittance import remittance_rows
from invoicing.services.pdf_store import invoice_pdf_path, invoice_pdf_store

logger = logging.getLogger(__name__)


def invoice_email_send(*, invoice: Invoice) -> bool:
    """Email the finalized invoice with its PDF to the organization's billing email, once.

    Returns True if this call sent it; False if it had been sent already or the organization has
    no billing email (logged; nothing recorded, so a later call sends once an address is set).
    Stores the PDF first if it is not stored yet. Nothing is locked while the mail server is
    talked to; `emailed_at` is then set only where it is still empty (see the module docstring
    for the one window in which a crash sends twice)."""
    if invoice.status == InvoiceStatus.DRAFT:
        raise DomainError(
            f"Invoice {invoice} is not finalized: a draft is not sent.", code="invoice_not_final", status_code=409
        )
    if invoice.emailed_at is not None:
        return False
    emailed_at = Invoice.objects.filter(pk=invoice.pk).values_list("emailed_at", flat=True).get()
    if emailed_at is not None:
        invoice.emailed_at = emailed_at
        return False
    if not invoice.pdf:
        invoice_pdf_store(invoice=invoice)
    recipient = invoice.organization.billing_email
    if not recipient:
        logger.info(
            "invoice email not sent: organization has no billing email",
            extra={"invoice": invoice.number, "organization": invoice.organization.external_id},
        )
        return False
    message = _email_message(invoice, recipient=recipient)
    fault_point("invoice.email_send")
    message.send(fail_silently=False)
    now = timezone.now()
    if Invoice.objects.filter(pk=invoice.pk, emailed_at=None).update(emailed_at=now):
        audit_event(invoice, event="invoice.emailed", to=recipient)
    invoice.emailed_at = now
    return True


def _email_message(invoice: Invoice, *, recipient: str) -> EmailMultiAlternatives:
    seller = invoice.seller or {}
    seller_name = " ".join(str(seller.get("name") or "").split())  # no line breaks in a header
    fmt = invoice_fmt(invoice)
    color = seller.get("primary_color")
    context = {
        "number": invoice.number,
        "seller_name": seller_name,
        "seller_email": seller.get("email") or "",
        "customer_name": (invoice.customer or {}).get("name") or invoice.organization.name,
        "amount_due": fmt.money(invoice.amount_due),
        "total": fmt.money(invoice.total),
        "due": fmt.date(invoice.due_at),
        "issued": fmt.date(invoice.issued_at),
        "period": fmt.period(invoice.period_start, invoice.period_end),
        "is_paid": invoice.amount_due == 0,
        "primary_color": color if HEX_COLOR.match(str(color or "")) else DEFAULT_COLORS[0],
        "legal_text": seller.get("legal_text") or "",
        "remittance": remittance_rows(invoice),
    }
    subject = f"Invoice {invoice.number} from {seller_name}" if seller_name else f"Invoice {invoice.number}"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("invoicing/email/invoice.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        reply_to=[context["seller_email"]] if context["seller_email"] else None,
        # The same id on a resend after a crash, so mail systems see one message.
        headers={"Message-ID": f"<invoice.{connection.schema_name}.{invoice.pk}@{DNS_NAME}>"},
    )
    message.attach_alternative(render_to_string("invoicing/email/invoice.html", context), "text/html")
    with invoice.pdf.open("rb") as f:
        message.attach(f"{invoice_pdf_path(invoice=invoice).rsplit('/', 1)[-1]}", f.read(), "application/pdf")
    return message
