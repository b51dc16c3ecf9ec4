"""How the invoicing API writes invoices, their lines, credit notes and previews.

Amounts are strings with the currency's decimals (the 4-decimal columns are rounded for display
with core.money.round_money); quantities, unit amounts and rates are plain decimal strings;
instants RFC 3339. An invoice line has the shape of a preview line (billing.api.formats
`bill_line_out` plus its tax), so a preview and the invoice it becomes compare key by key;
`discounts_line` is the position of the line a discount reduces."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from django.urls import reverse

from billing.api.formats import amount_text, bill_line_out, decimal_text, instant_text
from billing.line_json import breakdown_from_json, breakdown_json
from core.money import round_money
from invoicing.compose import DraftLine, InvoiceDraft
from invoicing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, InvoiceStatus
from invoicing.services.invoice_lines import taxes_json


def money_text(value: Decimal, currency: str) -> str:
    return amount_text(round_money(value, currency))


def _stored_decimal(value: str | None) -> str | None:
    # JSON columns hold decimals as `format(value, "f")`, padded as the engine made them.
    return None if value is None else decimal_text(Decimal(value))


def _taxes_stored(taxes: Iterable[Mapping], currency: str) -> list[dict]:
    return [
        {
            "name": t["name"],
            "jurisdiction": t["jurisdiction"],
            "rate": _stored_decimal(t["rate"]),
            "taxable_amount": money_text(Decimal(t["taxable_amount"]), currency),
            "amount": money_text(Decimal(t["amount"]), currency),
            "reason": t["reason"],
        }
        for t in taxes
    ]


def invoice_line_out(line: InvoiceLine, *, positions: Mapping[int, int]) -> dict:
    """`positions`: line id -> position on the same invoice (for `discounts_line`)."""
    return {
        "id": line.pk,
        "position": line.position,
        "kind": line.kind,
        "description": line.description,
        "amount": money_text(line.amount, line.currency),
        "currency": line.currency,
        "quantity": decimal_text(line.quantity),
        "unit_amount": decimal_text(line.unit_amount),
        "period_start": instant_text(line.period_start),
        "period_end": instant_text(line.period_end),
        "billing_period_start": instant_text(line.billing_period_start),
        "billing_period_end": instant_text(line.billing_period_end),
        "proration": line.proration,
        "meter": line.meter_code or None,
        "group": line.group,
        "coupon_redemption": line.coupon_redemption_id,
        "discounts_line": positions[line.discounts_id] if line.discounts_id else None,
        "corrects": line.corrects_id,
        "breakdown": breakdown_json(breakdown_from_json(line.breakdown), text=decimal_text),
        "net_amount": money_text(line.net_amount, line.currency),
        "tax_amount": money_text(line.tax_amount, line.currency),
        "tax_rate": decimal_text(line.tax_rate),
        "tax_jurisdiction": line.tax_jurisdiction,
        "tax_reason": line.tax_reason,
        "taxes": _taxes_stored(line.taxes, line.currency),
    }


def draft_line_out(d: DraftLine) -> dict:
    out = bill_line_out(d.line)
    out["corrects"] = d.line.corrects
    out.update(
        {
            "net_amount": money_text(d.net_amount.amount, d.line.currency),
            "tax_amount": money_text(d.tax_amount.amount, d.line.currency),
            "tax_rate": decimal_text(d.tax_rate),
            "tax_jurisdiction": d.tax_jurisdiction,
            "tax_reason": d.tax_reason,
            "taxes": _taxes_stored(taxes_json(d.taxes), d.line.currency),
        }
    )
    return out


def draft_out(draft: InvoiceDraft) -> dict:
    return {
        "subscription": draft.subscription_id,
        "bill_point": instant_text(draft.point),
        "currency": draft.currency,
        "period_start": instant_text(draft.period_start),
        "period_end": instant_text(draft.period_end),
        "subtotal": money_text(draft.subtotal.amount, draft.currency),
        "tax_total": money_text(draft.tax_total.amount, draft.currency),
        "total": money_text(draft.total.amount, draft.currency),
        "tax_problem": draft.tax_problem,
        "lines": [draft_line_out(d) for d in draft.lines],
    }


def invoice_out(invoice: Invoice, *, lines: bool = False) -> dict:
    """The invoice; with `lines` (the detail) also its lines and credit notes, which the caller
    prefetches (`lines`, `credit_notes`)."""
    c = invoice.currency
    out = {
        "id": invoice.pk,
        "number": invoice.number,
        "status": invoice.status,
        "customer": invoice.organization.external_id,
        "subscription": invoice.subscription_id,
        "currency": c,
        "bill_point": instant_text(invoice.bill_point),
        "period_start": instant_text(invoice.period_start),
        "period_end": instant_text(invoice.period_end),
        "subtotal": money_text(invoice.subtotal, c),
        "tax_total": money_text(invoice.tax_total, c),
        "total": money_text(invoice.total, c),
        "credits_applied": money_text(invoice.credits_applied, c),
        "amount_due": money_text(invoice.amount_due, c),
        "amount_paid": money_text(invoice.amount_paid, c),
        "tax_problem": invoice.tax_problem,
        "grace_until": instant_text(invoice.grace_until),
        "issued_at": instant_text(invoice.issued_at),
        "due_at": instant_text(invoice.due_at),
        "paid_at": instant_text(invoice.paid_at),
        "voided_at": instant_text(invoice.voided_at),
        "created_at": instant_text(invoice.created_at),
        "pdf": None if invoice.status == InvoiceStatus.DRAFT else reverse("invoice-pdf", args=[invoice.pk]),
    }
    if lines:
        stored = sorted(invoice.lines.all(), key=lambda line: line.position)
        positions = {line.pk: line.position for line in stored}
        out["seller"] = invoice.seller
        out["customer_details"] = invoice.customer
        out["lines"] = [invoice_line_out(line, positions=positions) for line in stored]
        out["credit_notes"] = [
            {"id": n.pk, "number": n.number, "total": money_text(n.total, n.currency)}
            for n in sorted(invoice.credit_notes.all(), key=lambda n: (n.created_at, n.pk))
        ]
    return out


def credit_note_line_out(line: CreditNoteLine, currency: str) -> dict:
    return {
        "id": line.pk,
        "line": line.invoice_line_id,
        "description": line.description,
        "amount": money_text(line.amount, currency),
        "tax_amount": money_text(line.tax_amount, currency),
    }


def credit_note_out(note: CreditNote) -> dict:
    """The caller loads `invoice__organization` and prefetches `lines`."""
    c = note.currency
    return {
        "id": note.pk,
        "number": note.number,
        "invoice": note.invoice_id,
        "invoice_number": note.invoice.number,
        "customer": note.invoice.organization.external_id,
        "reason": note.reason,
        "currency": c,
        "subtotal": money_text(note.subtotal, c),
        "tax_total": money_text(note.tax_total, c),
        "total": money_text(note.total, c),
        "applied_to_invoice": money_text(note.applied_to_invoice, c),
        "credited_to_balance": money_text(note.credited_to_balance, c),
        "created_at": instant_text(note.created_at),
        "lines": [credit_note_line_out(line, c) for line in sorted(note.lines.all(), key=lambda line: line.pk)],
    }
