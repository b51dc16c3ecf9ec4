"""Bodies of the payments API (described field for field by payments.api.responses)."""

from __future__ import annotations

from core.money import round_money
from payments.models import Payment, PaymentAttempt, Refund


def _amount(value, currency: str) -> str:
    return format(round_money(value, currency), "f")


def attempt_out(attempt: PaymentAttempt) -> dict:
    return {
        "step": attempt.step,
        "outcome": attempt.outcome,
        "status_after": attempt.status_after,
        "failure_code": attempt.failure_code,
        "message": attempt.message,
        "started_at": attempt.started_at.isoformat(),
        "finished_at": attempt.finished_at.isoformat() if attempt.finished_at else None,
    }


def refund_out(refund: Refund) -> dict:
    return {
        "id": refund.pk,
        "payment": refund.payment_id,
        "status": refund.status,
        "currency": refund.currency,
        "amount": _amount(refund.amount, refund.currency),
        "credit_note": refund.credit_note_id,
        "credit_note_number": refund.credit_note.number,
        "gateway_refund_id": refund.gateway_refund_id,
        "failure_message": refund.failure_message,
        "created_at": refund.created_at.isoformat(),
    }


def payment_out(payment: Payment, *, detail: bool = False) -> dict:
    body = {
        "id": payment.pk,
        "invoice": payment.invoice_id,
        "invoice_number": payment.invoice.number,
        "customer": payment.organization.external_id,
        "number": payment.number,
        "status": payment.status,
        "currency": payment.currency,
        "amount": _amount(payment.amount, payment.currency),
        "amount_refunded": _amount(payment.amount_refunded, payment.currency),
        "gateway": payment.gateway,
        "gateway_payment_id": payment.gateway_payment_id,
        "method_type": payment.method_type,
        "failure_code": payment.failure_code or None,
        "failure_message": payment.failure_message or None,
        "created_at": payment.created_at.isoformat(),
    }
    if detail:
        body["attempts"] = [attempt_out(a) for a in payment.attempts.all()]
        body["refunds"] = [refund_out(r) for r in payment.refunds.select_related("credit_note").order_by("id")]
    return body
