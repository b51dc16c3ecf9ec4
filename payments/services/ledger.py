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
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_actor, audit_events_bulk
from billing.models import CreditKind
from billing.services.credit import credit_grant
from core.db import rows_update
from core.services.webhook_emit import webhook_emit_bulk
from invoicing.models import Invoice, InvoiceStatus
from invoicing.services.invoice import invoice_lock
from invoicing.webhooks import invoice_payload
from payments.gateways.base import ChargeResult, ChargeStatus
from payments.models import Payment, PaymentStatus
from payments.services.emails import payments_action_enqueue, payments_receipt_enqueue
from payments.webhooks import payment_payload

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


def _payments_lock(payment_ids: set[int]) -> dict[int, Payment]:
    """The payments with their invoices, locked in the ledger's order (the invoices, by id, then the
    payments, by id: two batches that overlap wait for each other instead of deadlocking)."""
    invoice_ids = set(Payment.objects.filter(pk__in=payment_ids).values_list("invoice_id", flat=True))
    invoices = {
        i.pk: i
        for i in Invoice.objects.select_for_update(of=("self",))
        .select_related("organization")
        .filter(pk__in=invoice_ids)
        .order_by("pk")
    }
    payments = {
        p.pk: p
        for p in Payment.objects.select_for_update(of=("self",))
        .select_related("organization")
        .filter(pk__in=payment_ids)
        .order_by("pk")
    }
    for payment in payments.values():
        payment.invoice = invoices[payment.invoice_id]
    return payments


@dataclass
class _Writes:
    """What a batch of results changes, written at the end with one statement per kind of row."""

    payments: dict[int, Payment] = field(default_factory=dict)
    invoices: dict[int, Invoice] = field(default_factory=dict)
    audits: dict[str, list[tuple[object, dict]]] = field(default_factory=lambda: defaultdict(list))
    emits: list[tuple[str, Payment]] = field(default_factory=list)
    actions: list[Payment] = field(default_factory=list)
    receipts: list[Payment] = field(default_factory=list)
    paid: list[Invoice] = field(default_factory=list)
    credits: list[tuple[Payment, Invoice, Decimal]] = field(default_factory=list)


def payment_result_record(*, payment_id: int, result: ChargeResult, gateway_at: datetime | None = None) -> bool:
    """Record `result` on the payment (and apply its money once it succeeded). `gateway_at` is
    the gateway's time of the state (a webhook's `created`); None for a synchronous answer, which
    is as new as the request. True when it changed something."""
    return payment_results_record([(payment_id, result, gateway_at)])[0]


def payment_results_record(items: Sequence[tuple[int, ChargeResult, datetime | None]]) -> list[bool]:
    """`payment_result_record` for many results in one transaction (a chunk of collections, a batch
    of webhook events): the rows locked with two statements, the rules applied in the given order
    in memory (two results about one payment see each other), then each kind of row written with
    one statement. Whether each result changed something, in order."""
    if not items:
        return []
    now = timezone.now()
    with audit_actor(None), transaction.atomic():
        payments = _payments_lock({payment_id for payment_id, _, _ in items})
        writes = _Writes()
        changed = [_record(payments[pid], result, gateway_at, now, writes) for pid, result, gateway_at in items]
        _write(writes, now)
    return changed


def _record(payment: Payment, result: ChargeResult, gateway_at: datetime | None, now: datetime, writes: _Writes):
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
    failure = result.failure if status != PaymentStatus.SUCCEEDED else None
    payment.failure_code = failure.code if failure else ""
    payment.failure_message = failure.message[:500] if failure else ""
    # Gateways time their events to the second: a synchronous answer counts as of its second, so
    # an event from that same second is not taken for an older one.
    payment.gateway_state_at = max(filter(None, [payment.gateway_state_at, gateway_at or now.replace(microsecond=0)]))
    writes.payments[payment.pk] = payment
    changed = before != status
    if changed:
        writes.audits[f"payment.{status}"].append(
            (
                payment,
                {
                    "status": (before, status),
                    "amount": str(payment.amount),
                    "currency": payment.currency,
                    "failure": payment.failure_code,
                },
            )
        )
        if status == PaymentStatus.FAILED:
            writes.emits.append(("payment.failed", payment))
        if status == PaymentStatus.REQUIRES_ACTION:
            writes.actions.append(payment)
    if status == PaymentStatus.SUCCEEDED and payment.applied_at is None:
        # Under the payment's row lock: the first answer about this success applies its money,
        # any later one (in this batch or after it) finds `applied_at` set.
        _apply(invoice=payment.invoice, payment=payment, at=now, writes=writes)
    return changed


def _apply(*, invoice: Invoice, payment: Payment, at: datetime, writes: _Writes) -> None:
    payment.applied_at = at
    payable = invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
    applied = min(payment.amount, invoice.amount_due) if payable else ZERO
    excess = payment.amount - applied
    if applied:
        invoice.amount_paid += applied
        invoice.amount_due -= applied
        if invoice.amount_due == 0:
            # Under the invoice's row lock, from open/uncollectible only: paid once.
            invoice.status, invoice.paid_at = InvoiceStatus.PAID, at
            payment.settled_invoice = True
        writes.invoices[invoice.pk] = invoice
    writes.audits["invoice.payment_applied"].append(
        (
            invoice,
            {
                "payment": payment.pk,
                "applied": str(applied),
                "excess": str(excess),
                "amount_due": str(invoice.amount_due),
            },
        )
    )
    if excess > 0:
        writes.credits.append((payment, invoice, excess))
    writes.emits.append(("payment.succeeded", payment))
    writes.receipts.append(payment)
    if payment.settled_invoice:
        writes.paid.append(invoice)


def _write(writes: _Writes, now: datetime) -> None:
    if writes.invoices:
        invoices = list(writes.invoices.values())
        for invoice in invoices:
            invoice.updated_at = now
        rows_update(Invoice, invoices, ["amount_paid", "amount_due", "status", "paid_at", "updated_at"])
    if writes.payments:
        payments = list(writes.payments.values())
        for payment in payments:
            payment.updated_at = now
        rows_update(Payment, payments, _PAYMENT_FIELDS)
    for event, rows in writes.audits.items():
        details = {id(instance): values for instance, values in rows}
        audit_events_bulk([i for i, _ in rows], event=event, details=lambda i, d=details: d[id(i)])
    for payment, invoice, excess in writes.credits:
        credit_grant(
            actor=None,
            organization=payment.organization,
            amount=excess,
            currency=payment.currency,
            kind=CreditKind.PURCHASE,  # money the customer paid us and holds as credit
            description=f"Overpayment of invoice {invoice.number} (payment {payment.pk})"[:300],
            reference=invoice.number or "",
            at=now,
        )
    webhook_emit_bulk(
        [(event, payment_payload(payment)) for event, payment in writes.emits]
        + [
            (event, invoice_payload(invoice, customer=invoice.organization.external_id))
            for event, invoice in (("invoice.paid", i) for i in writes.paid)
        ]
    )
    payments_action_enqueue(writes.actions)
    payments_receipt_enqueue(writes.receipts)


_PAYMENT_FIELDS = [
    "status",
    "gateway_payment_id",
    "gateway_charge_id",
    "payment_method_id",
    "failure_code",
    "failure_message",
    "gateway_state_at",
    "applied_at",
    "settled_invoice",
    "updated_at",
]
