"""The JSON of a bill line's parts, in one place: its price breakdown (billing.pricing's
BreakdownItem) and its proration, as invoice lines store them (invoicing.services.invoice_lines),
as the PDF reads them back (invoicing.pdf_render), and as the API writes a preview line
(billing.api.formats) and an invoice line (invoicing.api.formats). Written once, so a preview
and the invoice it becomes compare key by key.

Stored decimals are `format(value, "f")`: exact, padded as the engine made them; the API writes
them through its own text function (plain, without the padding)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from billing.pricing.results import BreakdownItem


def decimal_stored(value: Decimal) -> str:
    return format(value, "f")


def breakdown_json(
    items: Iterable[BreakdownItem], *, text: Callable[[Decimal], str | None] = decimal_stored
) -> list[dict]:
    """The pieces of a line's charge, decimals written by `text`."""
    return [
        {
            "label": item.label,
            "tier": item.tier,
            "quantity": text(item.quantity),
            "unit_amount": text(item.unit_amount),
            "flat_amount": text(item.flat_amount),
            "amount": text(item.amount),
        }
        for item in items
    ]


def breakdown_from_json(rows: Iterable[Mapping]) -> list[BreakdownItem]:
    """What breakdown_json stored, read back."""
    return [
        BreakdownItem(
            label=row["label"],
            tier=row["tier"],
            quantity=Decimal(row["quantity"]),
            unit_amount=Decimal(row["unit_amount"]),
            flat_amount=Decimal(row["flat_amount"]),
            amount=Decimal(row["amount"]),
        )
        for row in rows
    ]


def proration_json(proration: tuple[int, int] | None) -> dict | None:
    """(seconds billed, seconds in the period) as {"seconds", "of"}; None for a whole period."""
    return None if proration is None else {"seconds": proration[0], "of": proration[1]}
