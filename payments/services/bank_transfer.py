"""Bank transfers recorded as payments: by staff from the admin, or by a statement import that
matched a line (payments.services.bank_statement).

A transfer is a `Payment` of method `bank_transfer` that has already succeeded: the money is on
the seller's account. It is the invoice's next payment number (its idempotency key follows the
ledger's `inv<invoice>-<number>`) and its money goes through the ledger's one apply function
(`payment_result_record`), so a transfer is paid exactly once like any charge: a partial amount
lowers the amount due, an excess (or a transfer for an invoice already paid) becomes credit, and
the receipt email and `payment.succeeded` / `invoice.paid` webhooks leave through the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import Max

from accounts.audit import audit_actor, audit_event
from core.errors import DomainError
from core.money import Money, round_money
from invoicing.models import Invoice, InvoiceStatus
from invoicing.services.invoice import invoice_lock
from payments.gateways.base import ChargeResult, ChargeStatus
from payments.models import BankTransfer, LineOutcome, Payment, PaymentStatus, StatementLine
from payments.services.ledger import payment_result_record

GATEWAY = "bank_transfer"
# Money received for these is applied (to the amount due, the rest as credit); a draft has no
# number to quote and a void invoice asks for nothing: a person assigns such money elsewhere.
RECEIVABLE = (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.PAID)


@dataclass(frozen=True)
class TransferRecorded:
    payment: Payment
    outcome: LineOutcome  # paid | partial | overpaid, against the amount due when it arrived
    credited: Decimal  # what became credit


def bank_transfer_record(
    *,
    actor,
    invoice_id: int,
    amount: Money,
    received_on: date,
    reference: str = "",
    counterparty: str = "",
    note: str = "",
) -> TransferRecorded:
    """Record a transfer received for an invoice (staff, from the admin). DomainError (nothing
    written) for a draft or void invoice, another currency, or an amount that is not positive or
    has more decimals than the currency."""
    with audit_actor(actor), transaction.atomic(durable=True):
        return transfer_apply(
            actor=actor,
            invoice_id=invoice_id,
            amount=amount,
            received_on=received_on,
            reference=reference,
            counterparty=counterparty,
            note=note,
        )


def transfer_apply(
    *,
    actor,
    invoice_id: int,
    amount: Money,
    received_on: date,
    reference: str = "",
    counterparty: str = "",
    note: str = "",
    statement_line: StatementLine | None = None,
) -> TransferRecorded:
    """Inside the caller's transaction: lock the invoice, check, add the payment and apply it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("transfer_apply must run inside a transaction")
    invoice = invoice_lock(invoice_id)  # the ledger's lock order starts here
    _check(invoice, amount)
    due = invoice.amount_due if invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE) else Decimal(0)
    last = Payment.objects.filter(invoice=invoice).aggregate(n=Max("number"))["n"] or 0
    number = last + 1
    payment = Payment.objects.create(
        invoice=invoice,
        organization=invoice.organization,
        number=number,
        idempotency_key=f"inv{invoice.pk}-{number}",
        gateway=GATEWAY,
        method_type=GATEWAY,
        amount=amount.amount,
        currency=amount.currency,
        status=PaymentStatus.PENDING,
    )
    BankTransfer.objects.create(
        payment=payment,
        received_on=received_on,
        reference=reference[:500],
        counterparty=counterparty[:300],
        note=note,
        statement_line=statement_line,
        recorded_by=actor if getattr(actor, "pk", None) else None,
    )
    payment_result_record(
        payment_id=payment.pk, result=ChargeResult(id="", status=ChargeStatus.SUCCEEDED, amount=amount)
    )
    payment.refresh_from_db()
    if amount.amount == due:
        outcome = LineOutcome.PAID
    elif amount.amount < due:
        outcome = LineOutcome.PARTIAL
    else:
        outcome = LineOutcome.OVERPAID
    credited = max(amount.amount - due, Decimal(0))
    audit_event(
        payment,
        event="payment.bank_transfer_recorded",
        invoice=invoice.number,
        amount=str(amount.amount),
        currency=amount.currency,
        received_on=received_on.isoformat(),
        reference=reference[:200],
        statement_line=statement_line.pk if statement_line else None,
        outcome=str(outcome),
        credited=str(credited),
    )
    return TransferRecorded(payment=payment, outcome=outcome, credited=credited)


def _check(invoice: Invoice, amount: Money) -> None:
    if invoice.status not in RECEIVABLE:
        raise DomainError(
            f"Invoice {invoice} is {invoice.status}: a transfer is recorded against an open or paid invoice.",
            code="invoice_not_payable",
            status_code=409,
        )
    if amount.currency != invoice.currency:
        raise DomainError(
            f"The transfer is in {amount.currency}; invoice {invoice} is in {invoice.currency}.",
            code="currency_mismatch",
        )
    if amount.amount <= 0:
        raise DomainError("A transfer's amount must be positive.", code="invalid_amount")
    if round_money(amount.amount, amount.currency) != amount.amount:
        raise DomainError(f"{amount.amount} has more decimals than {amount.currency} has.", code="invalid_amount")
