"""Recording what a gateway says about a charge, from its synchronous answer or a webhook, in any
order and any number of times, with the invoice paid exactly once:

- a state older than the one recorded (by the gateway's own time) is ignored, and a succeeded
  payment never goes back (money received is corrected by refunds, never by an edit);
- the money is applied to the invoice by one conditional update (`applied_at` from NULL), so a
  second answer about the same success applies nothing;
- the invoice moves to paid only from open/uncollectible, under its row lock, and the payment that
  does it is marked `settled_invoice`, which a partial unique index allows once per invoice;
- what exceeds the amount due (an overpayment, or a second payment of an invoice already paid)
  becomes credit on the organization's balance.

Locks: invoice, then payment, then organization (billing.locks' order after invoicing's)."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_actor, audit_event
from billing.models import CreditKind
from billing.services.credit import credit_grant
from invoicing.models import Invoice, InvoiceStatus
from invoicing.services.invoice import invoice_lock
from invoicing.webhooks import invoice_emit
from payments.gateways.base import ChargeResult, ChargeStatus
from payments.models import Payment, PaymentStatus
from payments.services.emails import payment_action_enqueue, payment_receipt_enqueue
from payments.webhooks import payment_emit

logger = logging.getLogger(__name__)
ZERO = Decimal(0)

_STATUS = {
    ChargeStatus.CREATED: PaymentStatus.PENDING,
    ChargeStatus.PROCESSING: PaymentStatus.PROCESSING,
    ChargeStatus.REQUIRES_ACTION: PaymentStatus.REQUIRES_ACTION,
    ChargeStatus.SUCCEEDED: PaymentStatus.SUCCEEDED,
    ChargeStatus.FAILED: PaymentStatus.FAILED,
    ChargeStatus.CANCELED: PaymentStatus.CANCELED,
}


def payment_lock(payment_id: int) -> tuple[Invoice, Payment]:
    invoice_id = Payment.objects.values_list("invoice_id", flat=True).get(pk=payment_id)
    invoice = invoice_lock(invoice_id)
    payment = Payment.objects.select_for_update(of=("self",)).select_related("organization").get(pk=payment_id)
    payment.invoice = invoice
    return invoice, payment


def payment_result_record(*, payment_id: int, result: ChargeResult, gateway_at: datetime | None = None) -> bool:
    """Record `result` on the payment (and apply its money once it succeeded). `gateway_at` is
    the gateway's time of the state (a webhook's `created`); None for a synchronous answer, which
    is as new as the request. True when it changed something."""
    now = timezone.now()
    with audit_actor(None), transaction.atomic():
        invoice, payment = payment_lock(payment_id)
        status = _STATUS[result.status]
        if payment.gateway_state_at and gateway_at and gateway_at < payment.gateway_state_at:
            return False  # older than what we know
        if payment.status == PaymentStatus.SUCCEEDED and status != PaymentStatus.SUCCEEDED:
            return False  # money received stays received
        if status == PaymentStatus.PENDING and payment.status != PaymentStatus.PENDING:
            return False  # "created" is the first state; never a step back
        before = payment.status
        payment.status = status
        payment.gateway_payment_id = result.id or payment.gateway_payment_id
        payment.gateway_charge_id = result.charge_id or payment.gateway_charge_id
        payment.payment_method_id = result.payment_method_id or payment.payment_method_id
        payment.failure_code = result.failure.code if result.failure and status != PaymentStatus.SUCCEEDED else ""
        payment.failure_message = (
            result.failure.message[:500] if result.failure and status != PaymentStatus.SUCCEEDED else ""
        )
        # Gateways time their events to the second: a synchronous answer counts as of its second, so
        # an event from that same second is not taken for an older one.
        payment.gateway_state_at = max(
            filter(None, [payment.gateway_state_at, gateway_at or now.replace(microsecond=0)])
        )
        payment.save()
        changed = before != status
        if changed:
            audit_event(
                payment,
                event=f"payment.{status}",
                status=(before, status),
                amount=str(payment.amount),
                currency=payment.currency,
                failure=payment.failure_code,
            )
            if status == PaymentStatus.FAILED:
                payment_emit("payment.failed", payment)
            if status == PaymentStatus.REQUIRES_ACTION:
                payment_action_enqueue(payment)
        if status == PaymentStatus.SUCCEEDED:
            _apply(invoice=invoice, payment=payment, at=now)
        return changed


def _apply(*, invoice: Invoice, payment: Payment, at: datetime) -> None:
    claimed = Payment.objects.filter(pk=payment.pk, applied_at=None, status=PaymentStatus.SUCCEEDED).update(
        applied_at=at
    )
    if not claimed:
        return  # applied by an earlier answer about the same success
    payment.applied_at = at
    payable = invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
    applied = min(payment.amount, invoice.amount_due) if payable else ZERO
    excess = payment.amount - applied
    if applied:
        invoice.amount_paid += applied
        invoice.amount_due -= applied
        fields = ["amount_paid", "amount_due", "updated_at"]
        if invoice.amount_due == 0:
            # Conditional on the stored status too: the row lock already excludes a concurrent
            # payer, this makes the rule visible in the statement itself.
            moved = Invoice.objects.filter(
                pk=invoice.pk, status__in=(InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
            ).update(status=InvoiceStatus.PAID, paid_at=at)
            if moved:
                invoice.status, invoice.paid_at = InvoiceStatus.PAID, at
                Payment.objects.filter(pk=payment.pk).update(settled_invoice=True)
                payment.settled_invoice = True
        invoice.save(update_fields=fields)
    audit_event(
        invoice,
        event="invoice.payment_applied",
        payment=payment.pk,
        applied=str(applied),
        excess=str(excess),
        amount_due=str(invoice.amount_due),
    )
    if excess > 0:
        credit_grant(
            actor=None,
            organization=payment.organization,
            amount=excess,
            currency=payment.currency,
            kind=CreditKind.PURCHASE,  # money the customer paid us and holds as credit
            description=f"Overpayment of invoice {invoice.number} (payment {payment.pk})"[:300],
            reference=invoice.number or "",
            at=at,
        )
    payment_emit("payment.succeeded", payment)
    payment_receipt_enqueue(payment)
    if invoice.status == InvoiceStatus.PAID and payment.settled_invoice:
        invoice_emit("invoice.paid", invoice)
