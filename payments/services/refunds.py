"""Refunds: money given back on a succeeded payment, always with the credit note that says why.

The books balance by construction: revenue is corrected by the credit note alone (created here
from the invoice's lines, or an existing one referenced); a credit note on a paid invoice puts its
total on the organization's credit balance (invoicing.services.invoice.credit_note_create), and
the refund turns that credit into money paid back: one use entry taken from the note's own grant.
A refund therefore never moves revenue, and the customer never holds both the credit and the cash.

Two steps, like a charge:

1. `payment_refund` (one durable transaction, invoice → payment → organization locks): checks
   what is left to refund, takes or makes the note, takes its credit, writes the `Refund` row
   (`pending`, idempotency key `refund<payment>-<n>`), reserves the amount on the payment
   (`amount_refunded`, whose check constraint makes an over-refund impossible even past a bug
   here), audits, and writes a `payments.refund` outbox message;
2. `refund_drive` (after commit, outside any lock, and again by the outbox handler): the gateway
   call with the row's key. Succeeded or pending → recorded, `payment.refunded` to the seller on
   success; refused → `failed`, the reservation released and the note's credit given back; the
   gateway down → left pending, the outbox retries with the same key (never a second refund)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.audit import audit_actor, audit_event
from billing.locks import organization_lock
from billing.models import CreditEntry, CreditKind
from billing.services.credit import credit_grant
from core.errors import DomainError
from core.models import OutboxMessage
from core.money import round_money
from core.services.outbox import OutboxGiveUp, outbox_add, outbox_register
from invoicing.models import CreditNote, CreditNoteLine, InvoiceStatus
from invoicing.services.invoice import CreditNoteLineInput, credit_note_create
from payments.gateways import gateway_get
from payments.gateways.base import GatewayDown, GatewayError, RefundRequest
from payments.models import Payment, PaymentStatus, Refund
from payments.services.ledger import payment_lock
from payments.webhooks import refund_emit

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
REFUND_KIND = "payments.refund"
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180, 360, 720))


@dataclass(frozen=True)
class RefundInput:
    """What to refund. `credit_note_id` refers to an existing note of the payment's invoice;
    otherwise a note is made: from `lines` (net amounts, as the credit notes API takes them), or,
    with neither, of everything still creditable on the invoice (a full refund). `amount` (gross,
    in the currency's decimals) defaults to what the note put on the balance, capped by what is
    left to refund of the payment."""

    reason: str = ""
    amount: Decimal | None = None
    credit_note_id: int | None = None
    lines: tuple[CreditNoteLineInput, ...] = ()


def _amt(value: Decimal, currency: str) -> str:
    return format(round_money(value, currency), "f")


def _grant_of(note: CreditNote) -> CreditEntry | None:
    return (
        CreditEntry.objects.filter(
            organization_id=note.invoice.organization_id, kind=CreditKind.CREDIT_NOTE, reference=note.number
        )
        .order_by("id")
        .first()
    )


def _grant_left(grant: CreditEntry) -> Decimal:
    used = grant.uses.aggregate(total=Sum("amount"))["total"] or ZERO
    return grant.amount + used


def _full_lines(invoice) -> list[CreditNoteLineInput]:
    """Every line's net amount not yet credited (a full refund's note)."""
    credited = {
        row["invoice_line_id"]: row["amount"]
        for row in CreditNoteLine.objects.filter(invoice_line__invoice=invoice)
        .values("invoice_line_id")
        .annotate(amount=Sum("amount"))
    }
    lines = []
    for line in invoice.lines.exclude(kind="discount").order_by("id"):
        left = round_money(line.net_amount - credited.get(line.pk, ZERO), invoice.currency)
        if left > 0:
            lines.append(CreditNoteLineInput(invoice_line_id=line.pk, amount=left))
    return lines


def refund_lines(invoice, amount: Decimal | None) -> list[CreditNoteLineInput]:
    """The credit note lines of a refund of `amount` (gross) of `invoice`; None: everything still
    creditable (a full refund). The amount is taken from the lines still creditable in their
    order, each up to what is left of it with its tax, and turned back into the net the note
    takes in the proportion of that line's net to its tax, rounded to the currency: the note's
    tax is then credited in proportion per line (credit_note_create), so its total can differ
    from `amount` by that rounding (a cent), which a preview of the refund shows."""
    if amount is None:
        return _full_lines(invoice)
    credited = {
        row["invoice_line_id"]: (row["amount"], row["tax"])
        for row in CreditNoteLine.objects.filter(invoice_line__invoice=invoice)
        .values("invoice_line_id")
        .annotate(amount=Sum("amount"), tax=Sum("tax_amount"))
    }
    lines, rest = [], amount
    for line in invoice.lines.exclude(kind="discount").order_by("id"):
        if rest <= 0:
            break
        done, done_tax = credited.get(line.pk, (ZERO, ZERO))
        net_left, tax_left = line.net_amount - done, line.tax_amount - done_tax
        gross_left = net_left + tax_left
        if net_left <= 0 or gross_left <= 0:
            continue
        take = min(rest, gross_left)
        net = net_left if take == gross_left else round_money(take * net_left / gross_left, invoice.currency)
        if net > 0:
            lines.append(CreditNoteLineInput(invoice_line_id=line.pk, amount=net))
        rest -= take
    return lines


def payment_refund(*, actor, payment_id: int, refund: RefundInput) -> Refund:
    """Refund part or all of a succeeded payment (see the module docstring); the gateway call is
    made after commit. DomainError codes: `payment_not_refundable` (409: not succeeded),
    `invalid_amount`, `amount_exceeds_refundable` (more than the payment has left),
    `amount_exceeds_credit_note` (more than the note credited to the balance, or what is left of
    it), `credit_note_mismatch` (another invoice's note), `credit_note_refunded` (409: the note
    already has its refund), `nothing_to_refund` (the note credited nothing to the balance), plus
    the credit note's own codes when one is made."""
    with audit_actor(actor), transaction.atomic(durable=True):
        invoice, payment = payment_lock(payment_id)
        if payment.status != PaymentStatus.SUCCEEDED:
            raise DomainError(
                f"Payment {payment.pk} is {payment.status}: only a succeeded payment can be refunded.",
                code="payment_not_refundable",
                status_code=409,
            )
        left = payment.amount - payment.amount_refunded
        amount = refund.amount
        if amount is not None and (amount <= 0 or round_money(amount, payment.currency) != amount):
            raise DomainError(f"amount must be positive, in {payment.currency}'s decimals.", code="invalid_amount")
        if amount is not None and amount > left:
            raise DomainError(
                f"amount {amount} is more than the {left} {payment.currency} left to refund of payment {payment.pk}.",
                code="amount_exceeds_refundable",
            )
        if left <= 0:
            raise DomainError(f"Payment {payment.pk} is refunded in full.", code="amount_exceeds_refundable")
        if refund.credit_note_id is not None:
            note = CreditNote.objects.select_related("invoice").filter(pk=refund.credit_note_id).first()
            if note is None or note.invoice_id != invoice.pk:
                raise DomainError(
                    f"Credit note {refund.credit_note_id} is not one of invoice {invoice.number}'s.",
                    code="credit_note_mismatch",
                )
            if Refund.objects.filter(credit_note=note).exists():
                raise DomainError(
                    f"Credit note {note.number} has its refund already.", code="credit_note_refunded", status_code=409
                )
        else:
            if invoice.status != InvoiceStatus.PAID:
                # A note on an open invoice lowers what is due first: there would be no money to
                # give back, only less to pay.
                raise DomainError(
                    f"{invoice} is {invoice.status}: refunds are of paid invoices.",
                    code="invoice_not_paid",
                    status_code=409,
                )
            lines = list(refund.lines) or _full_lines(invoice)
            reason = refund.reason.strip() or f"Refund of payment {payment.pk}"
            note = credit_note_create(actor=actor, invoice=invoice, reason=reason, lines=lines)
        organization_lock(payment.organization_id)
        grant = _grant_of(note)
        available = min(_grant_left(grant), note.credited_to_balance) if grant is not None else ZERO
        if available <= 0:
            raise DomainError(
                f"Credit note {note.number} left nothing on the balance to pay back.", code="nothing_to_refund"
            )
        if amount is None:
            amount = min(available, left)
        elif amount > available:
            raise DomainError(
                f"amount {amount} is more than the {available} {payment.currency} "
                f"credit note {note.number} left to pay back.",
                code="amount_exceeds_credit_note",
            )
        number = Refund.objects.filter(payment=payment).count() + 1
        row = Refund.objects.create(
            payment=payment,
            credit_note=note,
            amount=amount,
            currency=payment.currency,
            idempotency_key=f"refund{payment.pk}-{number}",
        )
        now = timezone.now()
        CreditEntry.objects.create(
            organization_id=payment.organization_id,
            currency=payment.currency,
            # The credit note's credit leaves the balance as money: a use of its grant.
            kind=CreditKind.VOID,
            amount=-amount,
            grant=grant,
            description=f"Paid back by refund {row.pk} of payment {payment.pk}"[:300],
            reference=note.number,
            created_by=actor,
            created_at=now,
        )
        Payment.objects.filter(pk=payment.pk).update(amount_refunded=F("amount_refunded") + amount)
        audit_event(
            row,
            event="refund.created",
            payment=payment.pk,
            amount=_amt(amount, payment.currency),
            currency=payment.currency,
            credit_note=note.number,
            refunded=(
                _amt(payment.amount_refunded, payment.currency),
                _amt(payment.amount_refunded + amount, payment.currency),
            ),
        )
        outbox_add(kind=REFUND_KIND, key=f"refund:{row.pk}", payload={"refund_id": row.pk})
    try:
        return refund_drive(refund_id=row.pk)
    except GatewayDown:
        logger.warning("payments: gateway down for a refund; the outbox retries", extra={"refund": row.pk})
        return Refund.objects.get(pk=row.pk)


def refund_drive(*, refund_id: int) -> Refund:
    """The gateway call for a pending refund, with its key (a repeat is the same refund at the
    gateway). Raises GatewayDown for the outbox to retry."""
    row = Refund.objects.select_related("payment").get(pk=refund_id)
    if row.status != "pending" or row.gateway_refund_id:
        return row
    payment = row.payment
    try:
        result = gateway_get(payment.gateway).refund(
            RefundRequest(
                charge_id=payment.gateway_payment_id or "",
                amount=row.money,
                idempotency_key=row.idempotency_key,
                reason="requested_by_customer",
            )
        )
    except GatewayDown:
        raise
    except GatewayError as error:
        return refund_result_record(refund_id=row.pk, status="failed", message=str(error))
    return refund_result_record(refund_id=row.pk, status=result.status, gateway_refund_id=result.id)


def refund_result_record(*, refund_id: int, status: str, gateway_refund_id: str = "", message: str = "") -> Refund:
    """What the gateway said about a refund (its answer, or a webhook): pending → succeeded or
    failed, once. A failure releases the payment's reservation and gives the note's credit back."""
    with audit_actor(None), transaction.atomic():
        payment_id = Refund.objects.values_list("payment_id", flat=True).get(pk=refund_id)
        _, payment = payment_lock(payment_id)
        row = Refund.objects.select_for_update().select_related("credit_note", "payment").get(pk=refund_id)
        if gateway_refund_id and not row.gateway_refund_id:
            row.gateway_refund_id = gateway_refund_id
        if row.status in ("succeeded", "failed") or status == row.status:
            row.save(update_fields=["gateway_refund_id", "updated_at"])
            return row
        before, row.status = row.status, status
        row.failure_message = message[:500]
        row.save(update_fields=["gateway_refund_id", "status", "failure_message", "updated_at"])
        audit_event(
            row,
            event=f"refund.{status}",
            status=(before, status),
            amount=_amt(row.amount, row.currency),
            message=message[:200],
        )
        if status == "failed":
            Payment.objects.filter(pk=payment.pk).update(amount_refunded=F("amount_refunded") - row.amount)
            credit_grant(
                actor=None,
                organization=payment.organization,
                amount=row.amount,
                currency=row.currency,
                kind=CreditKind.CREDIT_NOTE,
                description=f"Refund {row.pk} failed: credit note {row.credit_note.number} back on the balance"[:300],
                reference=row.credit_note.number,
            )
        elif status == "succeeded":
            row.payment.refresh_from_db()
            refund_emit(row)
    return row


def _handle(message: OutboxMessage) -> None:
    try:
        refund_drive(refund_id=message.payload["refund_id"])
    except GatewayError as error:
        if isinstance(error, GatewayDown):
            raise
        raise OutboxGiveUp(str(error)) from error


def refund_register() -> None:
    outbox_register(REFUND_KIND, handler=_handle, retry_delays=RETRY_DELAYS)
