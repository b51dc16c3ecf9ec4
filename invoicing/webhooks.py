"""Payloads of the invoicing webhook events (v1; documented in docs/webhooks.md). They are built
from the rows already in hand (no query per invoice) and emitted in the transaction of the change,
in bulk where the change is (a billing run's chunk)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from core.money import round_money
from core.services.webhook_emit import webhook_emit_bulk
from invoicing.models import CreditNote, Invoice


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _amount(value: Decimal | None, currency: str) -> str | None:
    """In the currency's minor units ("35.70", "100" for JPY), whether the row came from the
    database (4 decimal places) or from memory."""
    return None if value is None else format(round_money(value, currency), "f")


def invoice_payload(invoice: Invoice, *, customer: str) -> dict:
    return {
        "id": invoice.pk,
        "number": invoice.number,
        "status": invoice.status,
        "customer": customer,
        "subscription": invoice.subscription_id,
        "currency": invoice.currency,
        "period_start": _time(invoice.period_start),
        "period_end": _time(invoice.period_end),
        "subtotal": _amount(invoice.subtotal, invoice.currency),
        "tax_total": _amount(invoice.tax_total, invoice.currency),
        "total": _amount(invoice.total, invoice.currency),
        "credits_applied": _amount(invoice.credits_applied, invoice.currency),
        "amount_due": _amount(invoice.amount_due, invoice.currency),
        "amount_paid": _amount(invoice.amount_paid, invoice.currency),
        "issued_at": _time(invoice.issued_at),
        "due_at": _time(invoice.due_at),
        "paid_at": _time(invoice.paid_at),
        "voided_at": _time(invoice.voided_at),
    }


def invoices_emit(event_type: str, invoices: Iterable[Invoice], *, customers: dict[int, str]) -> None:
    """`customers`: organization id → external id (the caller has the organizations at hand)."""
    webhook_emit_bulk([(event_type, invoice_payload(i, customer=customers[i.organization_id])) for i in invoices])


def invoice_emit(event_type: str, invoice: Invoice) -> None:
    """One invoice whose organization is loaded (select_related or already fetched)."""
    invoices_emit(event_type, [invoice], customers={invoice.organization_id: invoice.organization.external_id})


def credit_note_emit(note: CreditNote) -> None:
    invoice = note.invoice
    webhook_emit_bulk(
        [
            (
                "credit_note.created",
                {
                    "id": note.pk,
                    "number": note.number,
                    "invoice": invoice.pk,
                    "invoice_number": invoice.number,
                    "customer": invoice.organization.external_id,
                    "currency": note.currency,
                    "reason": note.reason,
                    "subtotal": _amount(note.subtotal, note.currency),
                    "tax_total": _amount(note.tax_total, note.currency),
                    "total": _amount(note.total, note.currency),
                    "applied_to_invoice": _amount(note.applied_to_invoice, note.currency),
                    "credited_to_balance": _amount(note.credited_to_balance, note.currency),
                    "created_at": _time(note.created_at),
                },
            )
        ]
    )
