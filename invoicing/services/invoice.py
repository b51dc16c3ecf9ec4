"""What happens to a finalized invoice: void, uncollectible, paid (by hand: a wire or a check;
gateways come through payments), and credit notes. Each locks the invoice, checks its stored
state, writes an audit entry and never edits its lines or totals. What the stored state refuses is
a conflict with the resource: those DomainErrors carry status 409."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.audit import Actor, audit_actor, audit_event
from billing.bill import LineKind
from billing.models import CreditKind
from billing.services.credit import credit_grant
from core.errors import DomainError
from core.money import minor_units, round_fraction, round_money
from invoicing.locks import invoice_lock
from invoicing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, InvoiceStatus
from invoicing.selectors.billed import fees_billed_get
from invoicing.selectors.settings import invoicing_settings_get
from invoicing.services.numbering import numbers_take
from invoicing.services.revenue import revenue_credit_note_reverse, revenue_void_reverse
from invoicing.webhooks import credit_note_emit, invoice_emit

ZERO = Decimal(0)


def _credit_returned(invoice: Invoice, *, at: datetime, why: str) -> None:
    """Credit the balance gave to this invoice goes back to the balance, as a new grant."""
    if invoice.credits_applied > 0:
        credit_grant(
            actor=None,
            organization=invoice.organization,
            amount=round_money(invoice.credits_applied, invoice.currency),
            currency=invoice.currency,
            kind=CreditKind.CREDIT_NOTE,
            description=f"Credit returned: invoice {invoice.number} {why}",
            reference=invoice.number or "",
            at=at,
        )


FeeKey = tuple[int, datetime]  # (plan version, billing period start)


def _fee_left(invoice: Invoice, keys: set[FeeKey], *, without_invoice: bool = False) -> dict[FeeKey, Fraction]:
    """Per base fee (version and period): what the subscription's finalized, non-void invoices
    billed of it (net of credit notes) less what they gave back as unused time; optionally as if
    `invoice` were void. The credit for unused time is computed from these figures (billing.bill),
    so taking back more of a fee than is left would pay out twice."""
    if not keys or invoice.subscription_id is None:
        return {}
    fees = fees_billed_get(
        subscription_ids=[invoice.subscription_id],
        since=min(start for _, start in keys),
        exclude_invoice_ids=[invoice.pk] if without_invoice else [],
        final_only=True,
    ).get(invoice.subscription_id, [])
    left: dict[FeeKey, Fraction] = defaultdict(Fraction)
    for fee in fees:
        key = (fee.plan_version_id, fee.billing_period_start)
        if key in keys:
            left[key] += fee.amount
    return left


def _credited_on(invoice: Invoice, key: FeeKey) -> str:
    """The numbers of the finalized invoices that credited this fee as unused time."""
    numbers = (
        InvoiceLine.objects.filter(
            invoice__subscription_id=invoice.subscription_id,
            kind=LineKind.BASE_FEE_CREDIT,
            plan_version_id=key[0],
            billing_period_start=key[1],
        )
        .exclude(invoice__status__in=(InvoiceStatus.DRAFT, InvoiceStatus.VOID))
        .order_by("invoice__number")
        .values_list("invoice__number", flat=True)
        .distinct()
    )
    return ", ".join(numbers)


def _priced(line: InvoiceLine, invoice: Invoice) -> Fraction:
    """The line after its discounts as priced: its net, plus its tax when prices include tax."""
    gross = line.net_amount + (line.tax_amount if invoice.seller.get("prices_include_tax") else ZERO)
    return Fraction(gross)


def _cents_down(value: Fraction, currency: str) -> Decimal:
    digits = minor_units(currency)
    return Decimal(math.floor(value * 10**digits)).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def _fee_key(line: InvoiceLine) -> FeeKey | None:
    if line.kind != LineKind.BASE_FEE or line.plan_version_id is None:
        return None
    return (line.plan_version_id, line.billing_period_start)


def invoice_void(*, actor: Actor, invoice: Invoice, at: datetime | None = None) -> Invoice:
    """Void a finalized, unpaid invoice: it is no longer owed (its number stays used). Credit
    applied to it returns to the balance. A paid invoice is corrected by a credit note instead,
    and so is one whose base fee a later invoice already credited as unused time (voiding it
    would leave that credit paid out for a fee no longer billed)."""
    at = at or timezone.now()
    with audit_actor(actor), transaction.atomic():
        locked = invoice_lock(invoice.pk)
        if locked.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
            raise DomainError(
                f"Only an open or uncollectible invoice can be voided; {locked} is {locked.status}.",
                code="invoice_not_voidable",
                status_code=409,
            )
        if locked.amount_paid > 0:
            raise DomainError(
                "A partly paid invoice is corrected with a credit note.", code="invoice_partly_paid", status_code=409
            )
        keys = {key for line in locked.lines.all() if (key := _fee_key(line))}
        for key, left in sorted(_fee_left(locked, keys, without_invoice=True).items()):
            if round_fraction(left, locked.currency) < 0:
                raise DomainError(
                    f"{locked}'s base fee for the period from {key[1].date().isoformat()} was already credited as "
                    f"unused time on {_credited_on(locked, key)}; correct it with a credit note instead.",
                    code="invoice_fee_credited",
                    status_code=409,
                )
        _credit_returned(locked, at=at, why="voided")
        locked.status, locked.voided_at, locked.amount_due = InvoiceStatus.VOID, at, ZERO
        locked.save(update_fields=["status", "voided_at", "amount_due", "updated_at"])
        revenue_void_reverse(locked, at=at)
        invoice_emit("invoice.voided", locked)
    return locked


def invoice_mark_uncollectible(*, actor: Actor, invoice: Invoice, at: datetime | None = None) -> Invoice:
    """Write an open invoice off (staff, or dunning's final action at `at`): it is still owed
    and may be paid, but receivables no longer count it from `uncollectible_at` on."""
    at = at or timezone.now()
    with audit_actor(actor), transaction.atomic():
        locked = invoice_lock(invoice.pk)
        if locked.status != InvoiceStatus.OPEN:
            raise DomainError(
                f"Only an open invoice can be marked uncollectible; {locked} is {locked.status}.",
                code="invoice_not_open",
                status_code=409,
            )
        locked.status, locked.uncollectible_at = InvoiceStatus.UNCOLLECTIBLE, at
        locked.save(update_fields=["status", "uncollectible_at", "updated_at"])
    return locked


def invoice_mark_paid(*, actor: Actor, invoice: Invoice, reference: str = "", at: datetime | None = None) -> Invoice:
    """Record that the amount due arrived outside a gateway (wire, check)."""
    at = at or timezone.now()
    with audit_actor(actor), transaction.atomic():
        locked = invoice_lock(invoice.pk)
        if locked.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
            raise DomainError(
                f"{locked} is {locked.status}, not awaiting payment.", code="invoice_not_open", status_code=409
            )
        locked.amount_paid += locked.amount_due
        locked.amount_due = ZERO
        locked.status, locked.paid_at = InvoiceStatus.PAID, at
        locked.save(update_fields=["status", "paid_at", "amount_paid", "amount_due", "updated_at"])
        audit_event(locked, event="invoice.paid_manually", reference=reference, amount=str(locked.amount_paid))
        invoice_emit("invoice.paid", locked)
    return locked


@dataclass(frozen=True)
class CreditNoteLineInput:
    invoice_line_id: int
    amount: Decimal  # net, positive, at most what is left to credit of the line


def credit_note_create(
    *, actor: Actor, invoice: Invoice, reason: str, lines: list[CreditNoteLineInput], at: datetime | None = None
) -> CreditNote:
    """Credit part or all of finalized lines. Tax is credited in proportion, rounded per line.
    Against an open invoice the note lowers the amount due; what is beyond it (or all of it, on a
    paid invoice) becomes credit on the organization's balance."""
    at = at or timezone.now()
    if not reason.strip():
        raise DomainError("A credit note needs a reason.", code="reason_required")
    if not lines:
        raise DomainError("A credit note needs at least one line.", code="lines_required")
    with audit_actor(actor), transaction.atomic():
        locked = invoice_lock(invoice.pk)
        if locked.status not in (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE):
            raise DomainError(
                f"{locked} is {locked.status}: only finalized invoices take credit notes.",
                code="invoice_not_final",
                status_code=409,
            )
        stored = {line.pk: line for line in locked.lines.exclude(kind="discount")}
        # what earlier notes (and earlier entries of this one) credited per line: amount, tax
        credited = {
            row["invoice_line_id"]: (row["amount"], row["tax"])
            for row in CreditNoteLine.objects.filter(invoice_line__invoice=locked)
            .values("invoice_line_id")
            .annotate(amount=Sum("amount"), tax=Sum("tax_amount"))
        }
        rows, subtotal, tax_total = [], ZERO, ZERO
        # A base fee that was partly credited as unused time can be credited only for the rest.
        fee_left = _fee_left(locked, {key for line in stored.values() if (key := _fee_key(line))})
        for index, item in enumerate(lines):
            line = stored.get(item.invoice_line_id)
            if line is None:
                raise DomainError(f"lines[{index}]: no line {item.invoice_line_id} on {locked}.", code="unknown_line")
            if item.amount <= 0 or round_money(item.amount, locked.currency) != item.amount:
                raise DomainError(
                    f"lines[{index}].amount must be positive, in {locked.currency}'s decimals.", code="invalid_amount"
                )
            done, done_tax = credited.get(line.pk, (ZERO, ZERO))
            left = round_money(line.net_amount - done, locked.currency)
            why, key = "", _fee_key(line)
            priced = _priced(line, locked)
            if key in fee_left and line.net_amount > 0:
                # what is left of the fee, back in the line's net (before tax), to the cent below
                unused = _cents_down(fee_left[key] * Fraction(line.net_amount) / priced, locked.currency)
                if unused < left:
                    left = max(unused, ZERO)
                    why = f" (the rest of the fee was credited as unused time on {_credited_on(locked, key)})"
            if item.amount > left:
                raise DomainError(
                    f"lines[{index}].amount {item.amount} is more than the {left} left to credit on that line{why}.",
                    code="amount_exceeds_line",
                )
            tax_left = line.tax_amount - done_tax
            if item.amount == left:
                tax = tax_left  # the last of the line takes the last of its tax: never more in all
            else:
                tax = min(round_money(line.tax_amount * item.amount / line.net_amount, locked.currency), tax_left)
            credited[line.pk] = (done + item.amount, done_tax + tax)
            if key in fee_left:
                fee_left[key] -= Fraction(item.amount) * priced / Fraction(line.net_amount)
            rows.append(
                CreditNoteLine(invoice_line=line, description=line.description, amount=item.amount, tax_amount=tax)
            )
            subtotal += item.amount
            tax_total += tax
        total = subtotal + tax_total
        on_invoice = min(total, locked.amount_due) if locked.status != InvoiceStatus.PAID else ZERO
        [number] = numbers_take(invoicing_settings_get().credit_note_prefix, 1)
        note = CreditNote.objects.create(
            invoice=locked,
            number=number,
            reason=reason,
            currency=locked.currency,
            subtotal=subtotal,
            tax_total=tax_total,
            total=total,
            applied_to_invoice=on_invoice,
            credited_to_balance=total - on_invoice,
            created_by=actor,
            created_at=at,
        )
        for row in rows:
            row.credit_note = note
        CreditNoteLine.objects.bulk_create(rows)
        if on_invoice:
            locked.amount_due -= on_invoice
            if locked.amount_due == 0:
                locked.status, locked.paid_at = InvoiceStatus.PAID, at
            locked.save(update_fields=["amount_due", "status", "paid_at", "updated_at"])
            if locked.status == InvoiceStatus.PAID:
                invoice_emit("invoice.paid", locked)
        if note.credited_to_balance > 0:
            credit_grant(
                actor=actor,
                organization=locked.organization,
                amount=note.credited_to_balance,
                currency=locked.currency,
                kind=CreditKind.CREDIT_NOTE,
                description=f"Credit note {number}: {reason}"[:300],
                reference=number,
                at=at,
            )
        revenue_credit_note_reverse(note)
        credit_note_emit(note)
    return note
