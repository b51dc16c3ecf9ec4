"""Refunds against localstripe: full and partial, each with its credit note, the note's credit
turned into money paid back (the balance ends where it was), one refund at the gateway per key,
`payment.refunded` to the seller, audited; refused refunds change nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from auditlog.models import LogEntry

from billing.models import CreditEntry
from billing.selectors.credit import credit_balance_get
from core.errors import DomainError
from core.models import OutboxMessage
from core.services.outbox import outbox_process
from core.services.webhook_endpoint import webhook_endpoint_create
from invoicing.models import CreditNote
from invoicing.services.invoice import CreditNoteLineInput, credit_note_create
from payments.models import Payment, Refund
from payments.services.refunds import RefundInput, payment_refund, refund_drive
from tests.invoicing.test_invoice_api import april_open
from tests.payments.conftest import CARD_OK, collect_all, payer_with

D = Decimal


@pytest.fixture
def paid(world, connected):
    payer_with(world[0], connected, card=CARD_OK)
    invoice = april_open(world)
    collect_all()
    webhook_endpoint_create(url="http://127.0.0.1:9/hook")
    payment = Payment.objects.get()
    assert payment.status == "succeeded"
    return invoice, payment


def refund_events() -> list[dict]:
    rows = OutboxMessage.objects.filter(kind="webhook.deliver").order_by("id")
    return [m.payload["event"]["data"] for m in rows if m.payload["event"]["type"] == "payment.refunded"]


def audit_of(instance) -> list[tuple]:
    return list(
        LogEntry.objects.get_for_object(instance)
        .filter(changes__has_key="event")
        .order_by("id")
        .values_list("changes__event__1", "changes__amount__1")
    )


def refunds_at_gateway(proxy) -> int:
    return proxy.requests["POST /v1/refunds"]


def test_full_refund_makes_a_credit_note_and_pays_its_credit_back(world, connected, paid):
    invoice, payment = paid
    refund = payment_refund(actor=None, payment_id=payment.pk, refund=RefundInput(reason="Service outage"))
    payment.refresh_from_db()
    assert (refund.status, refund.amount, refund.currency) == ("succeeded", D("35.70"), "EUR")
    assert refund.gateway_refund_id.startswith("re_") and refund.idempotency_key == f"refund{payment.pk}-1"
    assert payment.amount_refunded == D("35.70") and payment.status == "succeeded"
    note = CreditNote.objects.get()
    assert refund.credit_note == note and note.invoice == invoice and note.reason == "Service outage"
    assert (note.total, note.credited_to_balance, note.applied_to_invoice) == (D("35.70"), D("35.70"), D("0"))
    # the note's credit left as money: the balance is where it was, revenue corrected by the note alone
    assert list(CreditEntry.objects.order_by("id").values_list("kind", "amount")) == [
        ("credit_note", D("35.70")),
        ("void", D("-35.70")),
    ]
    assert credit_balance_get(organization=world[0]).amount == 0
    assert refunds_at_gateway(connected) == 1
    [event] = refund_events()
    assert event["refund"] == {
        "id": refund.pk,
        "amount": "35.70",
        "status": "succeeded",
        "credit_note": note.pk,
        "credit_note_number": note.number,
    }
    assert event["amount_refunded"] == "35.70"
    assert audit_of(refund) == [("refund.created", "35.70"), ("refund.succeeded", "35.70")]
    # driven again (the outbox's message after the synchronous call): nothing more at the gateway
    assert refund_drive(refund_id=refund.pk).status == "succeeded"
    assert refunds_at_gateway(connected) == 1


def test_partial_refund_of_an_existing_note_then_over_refund_refused(world, connected, paid):
    invoice, payment = paid
    line = invoice.lines.exclude(kind="discount").get()
    note = credit_note_create(
        actor=None,
        invoice=invoice,
        reason="Discount",
        lines=[CreditNoteLineInput(invoice_line_id=line.pk, amount=D("10.00"))],
    )
    assert note.credited_to_balance == D("11.90")
    refund = payment_refund(
        actor=None, payment_id=payment.pk, refund=RefundInput(credit_note_id=note.pk, amount=D("5.00"))
    )
    assert (refund.status, refund.amount, refund.credit_note_id) == ("succeeded", D("5.00"), note.pk)
    assert credit_balance_get(organization=world[0]).amount == D("6.90")  # the rest stays as credit
    before = (Refund.objects.count(), CreditEntry.objects.count(), refunds_at_gateway(connected), len(refund_events()))
    # the same note again: it has its refund
    with pytest.raises(DomainError) as refused:
        payment_refund(actor=None, payment_id=payment.pk, refund=RefundInput(credit_note_id=note.pk))
    assert refused.value.code == "credit_note_refunded"
    # more than is left of the payment (35.70 - 5.00)
    with pytest.raises(DomainError) as refused:
        payment_refund(actor=None, payment_id=payment.pk, refund=RefundInput(amount=D("30.71")))
    assert refused.value.code == "amount_exceeds_refundable"
    # more than a note gives back
    with pytest.raises(DomainError) as refused:
        payment_refund(
            actor=None,
            payment_id=payment.pk,
            refund=RefundInput(
                amount=D("20.00"), lines=(CreditNoteLineInput(invoice_line_id=line.pk, amount=D("10.00")),)
            ),
        )
    assert refused.value.code == "amount_exceeds_credit_note"
    with pytest.raises(DomainError) as refused:
        payment_refund(actor=None, payment_id=payment.pk, refund=RefundInput(amount=D("1.001")))
    assert refused.value.code == "invalid_amount"
    after = (Refund.objects.count(), CreditEntry.objects.count(), refunds_at_gateway(connected), len(refund_events()))
    assert after == before and CreditNote.objects.count() == 1
    assert Payment.objects.get().amount_refunded == D("5.00")


def test_refund_of_a_payment_not_succeeded_is_refused(world, connected):
    payer_with(world[0], connected, card="4000000000000341")
    april_open(world)
    collect_all()
    payment = Payment.objects.get()
    assert payment.status == "failed"
    with pytest.raises(DomainError) as refused:
        payment_refund(actor=None, payment_id=payment.pk, refund=RefundInput())
    assert (refused.value.code, refused.value.status_code) == ("payment_not_refundable", 409)
    assert not Refund.objects.exists() and not CreditNote.objects.exists()


def test_gateway_down_leaves_the_refund_pending_and_the_retry_refunds_once(world, connected, paid):
    _, payment = paid
    connected.down = True
    refund = payment_refund(actor=None, payment_id=payment.pk, refund=RefundInput(amount=D("10.00")))
    assert (refund.status, refund.gateway_refund_id) == ("pending", None)
    assert Payment.objects.get().amount_refunded == D("10.00")  # reserved: no second refund can pass it
    assert refunds_at_gateway(connected) == 0 and refund_events() == []
    [message] = OutboxMessage.objects.filter(kind="payments.refund")
    connected.down = False
    # refunded at the gateway, the answer lost: the retry with the same key is answered the same
    connected.lose_answers = 1
    outbox_process(ids=[message.pk])
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refunds_at_gateway(connected) == 1
    assert len(refund_events()) == 1


def test_refused_at_the_gateway_releases_the_amount_and_gives_the_credit_back(world, connected, paid, monkeypatch):
    from payments.gateways.base import GatewayError
    from payments.gateways.stripe import StripeGateway

    _, payment = paid

    def refuse(self, request):
        raise GatewayError("charge already refunded", code="refund_refused")

    monkeypatch.setattr(StripeGateway, "refund", refuse)
    refund = payment_refund(actor=None, payment_id=payment.pk, refund=RefundInput())
    assert (refund.status, refund.failure_message) == ("failed", "charge already refunded")
    assert Payment.objects.get().amount_refunded == D("0")
    assert credit_balance_get(organization=world[0]).amount == D("35.70")  # the note's credit is back
    assert refund_events() == []
    assert audit_of(refund) == [("refund.created", "35.70"), ("refund.failed", "35.70")]
