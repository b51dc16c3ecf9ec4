"""Dunning emails (payment failed, reminders, suspension, final notice, recovery), one per
`DunningStep` row: the run writes the step and its outbox message in one transaction; the handler
sends outside any lock and marks the step `emailed_at` by a conditional update, so a message run
twice (the outbox is at least once) sends once. A notice whose invoice was settled before it left
is not sent (the recovery note is the one email about a settled invoice)."""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.utils import DNS_NAME
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_actor, audit_event
from core.faults import fault_point
from core.models import OutboxMessage
from core.services.outbox import outbox_add, outbox_register
from dunning.models import DunningStep
from dunning.selectors import policy_for_invoice
from invoicing.formatting import DATE_FORMAT, DEFAULT_LOCALE
from invoicing.models import InvoiceStatus
from payments.services.emails import tenant_url

logger = logging.getLogger(__name__)

EMAIL_KIND = "dunning.email"
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180, 360, 720))  # as the invoice email
LEASE = timedelta(minutes=5)

SUBJECTS = {
    "predue": "Invoice {number} is due on {due_on}",
    "failed": "Payment failed for invoice {number}",
    "reminder": "Reminder: invoice {number} is unpaid",
    "suspended": "Access suspended: invoice {number} is unpaid",
    "final": "Final notice: invoice {number}",
    "recovered": "Thank you: invoice {number} is paid",
}
FINAL_TEXT = {
    "cancel_at_period_end": "Your subscription ends at the end of its current period.",
    "leave_past_due": "Your account stays suspended until the invoice is paid.",
    "mark_uncollectible": "The invoice has been marked uncollectible; access stays suspended until it is paid.",
}


def dunning_email_enqueue(step: DunningStep) -> None:
    """In the transaction that wrote the step."""
    outbox_add(kind=EMAIL_KIND, key=f"dunning-email:{step.pk}", payload={"step_id": step.pk})


def dunning_email_send(*, step_id: int) -> bool:
    """Send the step's email once; True if this call sent it."""
    step = DunningStep.objects.select_related("invoice", "organization").get(pk=step_id)
    if step.emailed_at is not None:
        return False
    invoice, organization = step.invoice, step.organization
    settled = invoice.status in (InvoiceStatus.PAID, InvoiceStatus.VOID) or invoice.amount_due <= 0
    if settled and step.email_kind != "recovered":
        return False
    recipient = organization.billing_email
    if not recipient:
        logger.info("dunning email not sent: no billing email", extra={"step": step.pk})
        return False
    message = _message(step, recipient=recipient)
    fault_point("dunning.email_send")
    message.send(fail_silently=False)
    with audit_actor(None), transaction.atomic():
        marked = DunningStep.objects.filter(pk=step.pk, emailed_at=None).update(
            emailed_at=timezone.now(), emailed_to=recipient
        )
        if marked:
            audit_event(invoice, event=f"dunning.email.{step.email_kind}", step=step.step, to=recipient)
    return True


def _message(step: DunningStep, *, recipient: str) -> EmailMultiAlternatives:
    invoice, organization = step.invoice, step.organization
    seller = invoice.seller or {}
    seller_name = " ".join(str(seller.get("name") or "").split())
    policy = policy_for_invoice(invoice)
    case = getattr(invoice, "dunning_case", None)
    suspend_on = ""
    if case is not None and step.email_kind == "reminder":
        zone = ZoneInfo(organization.timezone or "UTC")
        day = (case.started_at + timedelta(days=policy.suspend_day)).astimezone(zone).date()
        suspend_on = format_date(day, DATE_FORMAT, locale=DEFAULT_LOCALE)
    due_on = ""
    if invoice.due_at is not None:
        due_day = invoice.due_at.astimezone(ZoneInfo(organization.timezone or "UTC")).date()
        due_on = format_date(due_day, DATE_FORMAT, locale=DEFAULT_LOCALE)
    subject = SUBJECTS[step.email_kind].format(number=invoice.number, due_on=due_on)
    if seller_name:
        subject = f"{seller_name}: {subject}"
    context = {
        "kind": step.email_kind,
        "subject": subject,
        "seller_name": seller_name,
        "seller_email": seller.get("email") or "",
        "customer_name": (invoice.customer or {}).get("name") or organization.name,
        "number": invoice.number,
        "amount_due": invoice.amount_due,
        "currency": invoice.currency,
        "suspend_on": suspend_on,
        "due_on": due_on,
        "final_text": FINAL_TEXT.get(policy.final_action, ""),
        "link": tenant_url(reverse("portal:billing", args=[organization.external_id])),
    }
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("dunning/email/notice.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        reply_to=[context["seller_email"]] if context["seller_email"] else None,
        headers={"Message-ID": f"<dunning.{connection.schema_name}.{step.pk}@{DNS_NAME}>"},
    )
    message.attach_alternative(render_to_string("dunning/email/notice.html", context), "text/html")
    return message


def _handle(message: OutboxMessage) -> None:
    dunning_email_send(step_id=message.payload["step_id"])


def dunning_emails_register() -> None:
    outbox_register(EMAIL_KIND, handler=_handle, retry_delays=RETRY_DELAYS, lease=LEASE)
