"""Payloads of the payment webhook events to sellers (v1; documented in docs/webhooks.md),
emitted in the transaction of the change through core's outbox."""

from __future__ import annotations

from core.money import round_money
from core.services.webhook_emit import webhook_emit
from payments.models import Payment, Refund


def _amount(value, currency: str) -> str:
    return format(round_money(value, currency), "f")


def payment_payload(payment: Payment) -> dict:
    return {
        "id": payment.pk,
        "invoice": payment.invoice_id,
        "invoice_number": payment.invoice.number,
        "customer": payment.organization.external_id,
        "status": payment.status,
        "currency": payment.currency,
        "amount": _amount(payment.amount, payment.currency),
        "amount_refunded": _amount(payment.amount_refunded, payment.currency),
        "method_type": payment.method_type,
        "failure_code": payment.failure_code or None,
        "failure_message": payment.failure_message or None,
        "gateway": payment.gateway,
        "created_at": payment.created_at.isoformat() if payment.created_at else None,
    }


def payment_emit(event_type: str, payment: Payment) -> None:
    webhook_emit(event_type=event_type, payload=payment_payload(payment))


def refund_emit(refund: Refund) -> None:
    payload = payment_payload(refund.payment)
    payload["refund"] = {
        "id": refund.pk,
        "amount": _amount(refund.amount, refund.currency),
        "status": refund.status,
        "credit_note": refund.credit_note_id,
        "credit_note_number": refund.credit_note.number,
    }
    webhook_emit(event_type="payment.refunded", payload=payload)
