"""An invoice's lines from its draft (invoicing.compose): the rows as stored, their tax
components as JSON, and the set-wise write of many invoices' lines. The billing run writes them
when it drafts; finalization compares them with a re-made draft and rewrites them if they differ."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from billing.line_json import breakdown_json, proration_json
from core.db import rows_update
from invoicing.compose import InvoiceDraft
from invoicing.models import Invoice, InvoiceLine
from invoicing.tax import LineTax


def taxes_json(taxes: Iterable[LineTax]) -> list[dict]:
    """A line's tax components as InvoiceLine.taxes stores them (decimals as plain strings)."""
    return [
        {
            "name": str(t.name),
            "jurisdiction": t.jurisdiction,
            "rate": format(t.rate, "f"),
            "taxable_amount": format(t.taxable_amount, "f"),
            "amount": format(t.amount, "f"),
            "reason": t.reason,
        }
        for t in taxes
    ]


def invoice_line_rows(invoice: Invoice, draft: InvoiceDraft) -> list[InvoiceLine]:
    """The draft's lines as unsaved rows of `invoice`, in position order (discount links not set:
    they need the saved ids, see invoice_lines_write)."""
    rows = []
    for position, d in enumerate(draft.lines):
        line = d.line
        rows.append(
            InvoiceLine(
                invoice=invoice,
                position=position,
                kind=line.kind,
                description=line.description[:300],
                currency=line.currency,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                amount=line.amount.amount,
                net_amount=d.net_amount.amount,
                tax_amount=d.tax_amount.amount,
                tax_rate=d.tax_rate,
                tax_jurisdiction=d.tax_jurisdiction[:20],
                tax_reason=d.tax_reason,
                taxes=taxes_json(d.taxes),
                period_start=line.period_start,
                period_end=line.period_end,
                billing_period_start=line.billing_period_start,
                billing_period_end=line.billing_period_end,
                plan_version_id=line.plan_version_id,
                charge_id=line.charge_id,
                meter_code=line.meter_code or "",
                group=line.group,
                breakdown=breakdown_json(line.breakdown),
                proration=proration_json(line.proration),
                coupon_redemption_id=line.coupon_redemption_id,
                corrects_id=line.corrects,
            )
        )
    return rows


def invoice_lines_write(pairs: Sequence[tuple[Invoice, InvoiceDraft]]) -> list[InvoiceLine]:
    """The drafts' lines for saved invoices, in one insert, each discount line then linked to the
    line it reduces."""
    rows = [row for invoice, draft in pairs for row in invoice_line_rows(invoice, draft)]
    saved = InvoiceLine.objects.bulk_create(rows)
    by_invoice: dict[int, list[InvoiceLine]] = defaultdict(list)
    for row in saved:
        by_invoice[row.invoice_id].append(row)
    linked = []
    for row, d in zip(saved, [d for _, draft in pairs for d in draft.lines], strict=True):
        if d.line.discounts_line is not None:
            row.discounts_id = by_invoice[row.invoice_id][d.line.discounts_line].pk
            linked.append(row)
    rows_update(InvoiceLine, linked, ["discounts"])
    return saved


def draft_totals(invoice: Invoice, draft: InvoiceDraft) -> None:
    """The draft's currency, period and totals onto the invoice (not saved)."""
    invoice.currency = draft.currency
    invoice.period_start, invoice.period_end = draft.period_start, draft.period_end
    invoice.subtotal, invoice.tax_total, invoice.total = (
        draft.subtotal.amount,
        draft.tax_total.amount,
        draft.total.amount,
    )
    invoice.amount_due = draft.total.amount
    invoice.tax_problem = draft.tax_problem
