"""Emails about payments: the receipt once a payment succeeded (a card, a debit, a transfer) and
the request to finish a 3-D Secure payment on the portal.

The ledger enqueues them through the outbox in the transaction that records the payment's state
(`payments_receipt_enqueue`, `payments_action_enqueue`, one message per payment and kind, by key);
the handler sends outside any transaction or row lock, then records a `PaymentEmail` row
(unique per payment and kind) so a message run twice (the outbox is at least once) sends once.
As with the invoice email, the one window left is a crash between the mail server's acceptance
and that row: the resend carries the same Message-ID."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.utils import DNS_NAME
from django.db import IntegrityError, connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_event
from core.faults import fault_point
from core.models import OutboxMessage
from core.services.outbox import OutboxItem, outbox_add_bulk, outbox_register
from invoicing.formatting import DATE_FORMAT, DEFAULT_LOCALE
from payments.models import Payment, PaymentEmail

logger = logging.getLogger(__name__)

RECEIPT_KIND = "payments.receipt"
ACTION_KIND = "payments.action_required"
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180, 360, 720))  # as the invoice email
LEASE = timedelta(minutes=5)  # above the SMTP timeout

_KIND_OF = {RECEIPT_KIND: PaymentEmail.Kind.RECEIPT, ACTION_KIND: PaymentEmail.Kind.ACTION_REQUIRED}


def payments_receipt_enqueue(payments: Iterable[Payment]) -> None:
    """In the transaction that applied the payments' money: their receipts, once each."""
    outbox_add_bulk(
        OutboxItem(kind=RECEIPT_KIND, key=f"receipt:{p.pk}", payload={"payment_id": p.pk}) for p in payments
    )


def payments_action_enqueue(payments: Iterable[Payment]) -> None:
    """In the transaction that recorded `requires_action`: ask the customers to finish, once each."""
    outbox_add_bulk(OutboxItem(kind=ACTION_KIND, key=f"action:{p.pk}", payload={"payment_id": p.pk}) for p in payments)


def tenant_url(path: str) -> str:
    """An absolute link to the current tenant's site (emails are sent from workers, with no
    request to build it from): its primary domain in `settings.TENANT_BASE_URL`."""
    domain = connection.tenant.get_primary_domain()
    return settings.TENANT_BASE_URL.format(domain=domain.domain if domain else "localhost").rstrip("/") + path


def payment_email_send(*, payment_id: int, kind: PaymentEmail.Kind) -> bool:
    """Send the `kind` email of a payment once; True if this call sent it. Not sent (and not
    recorded, so a later run can) when the organization has no billing email."""
    if PaymentEmail.objects.filter(payment_id=payment_id, kind=kind).exists():
        return False
    payment = Payment.objects.select_related("invoice", "organization").get(pk=payment_id)
    if kind == PaymentEmail.Kind.ACTION_REQUIRED and payment.status != "requires_action":
        return False  # finished (or failed) before the email left: nothing to ask for
    recipient = payment.organization.billing_email
    if not recipient:
        logger.info(
            "payment email not sent: organization has no billing email",
            extra={"payment": payment.pk, "kind": str(kind), "organization": payment.organization.external_id},
        )
        return False
    message = _message(payment, kind=kind, recipient=recipient)
    fault_point("payments.email_send")
    message.send(fail_silently=False)
    try:
        with transaction.atomic():
            PaymentEmail.objects.create(payment=payment, kind=kind, to=recipient, sent_at=timezone.now())
            audit_event(payment, event=f"payment.email.{kind}", to=recipient)
    except IntegrityError:
        pass  # recorded by a concurrent run of the same message (its lease expired meanwhile)
    return True


def _message(payment: Payment, *, kind: PaymentEmail.Kind, recipient: str) -> EmailMultiAlternatives:
    invoice, organization = payment.invoice, payment.organization
    seller = invoice.seller or {}
    seller_name = " ".join(str(seller.get("name") or "").split())
    zone = ZoneInfo(organization.timezone or "UTC")
    transfer = getattr(payment, "bank_transfer", None) if payment.gateway == "bank_transfer" else None
    paid_on = transfer.received_on if transfer else (payment.applied_at or payment.updated_at).astimezone(zone).date()
    context = {
        "seller_name": seller_name,
        "seller_email": seller.get("email") or "",
        "customer_name": (invoice.customer or {}).get("name") or organization.name,
        "number": invoice.number,
        "amount": payment.amount,
        "currency": payment.currency,
        "amount_due": invoice.amount_due,
        "is_paid": invoice.status == "paid",
        "paid_on": format_date(paid_on, DATE_FORMAT, locale=DEFAULT_LOCALE),
        "method": _method_text(payment),
        "payment_id": payment.pk,
        "link": tenant_url(reverse("portal:billing", args=[organization.external_id])),
    }
    name = "receipt" if kind == PaymentEmail.Kind.RECEIPT else "action_required"
    if kind == PaymentEmail.Kind.RECEIPT:
        subject = f"Receipt for invoice {invoice.number}"
    else:
        subject = f"Action needed to pay invoice {invoice.number}"
    if seller_name:
        subject += f" from {seller_name}"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"payments/email/{name}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        reply_to=[context["seller_email"]] if context["seller_email"] else None,
        headers={"Message-ID": f"<payment.{name}.{connection.schema_name}.{payment.pk}@{DNS_NAME}>"},
    )
    message.attach_alternative(render_to_string(f"payments/email/{name}.html", context), "text/html")
    return message


def _method_text(payment: Payment) -> str:
    if payment.gateway == "bank_transfer":
        return "Bank transfer"
    payer = getattr(payment.organization, "payer", None)
    if payer and payer.default_payment_method_id == payment.payment_method_id and payer.default_method_label:
        return payer.default_method_label  # "visa •••• 4242": never more
    return {"card": "Card", "sepa_debit": "SEPA Direct Debit", "us_bank_account": "ACH debit"}.get(
        payment.method_type, "Card" if not payment.method_type else payment.method_type
    )


def _handle(message: OutboxMessage) -> None:
    payment_email_send(payment_id=message.payload["payment_id"], kind=_KIND_OF[message.kind])


def payment_emails_register() -> None:
    for kind in _KIND_OF:
        outbox_register(kind, handler=_handle, retry_delays=RETRY_DELAYS, lease=LEASE)
