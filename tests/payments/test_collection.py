"""Collection end to end against localstripe: finalize → the outbox's collection → the card
charged → the invoice paid; and each normalized outcome, with nothing else happening."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import CreditEntry
from core.models import OutboxMessage
from invoicing.models import Invoice
from payments.models import Payment
from payments.services.collection import invoice_collect
from payments.services.methods import collection_method_set
from tests.invoicing.test_invoice_api import april_open
from tests.payments.conftest import CARD_3DS, CARD_DECLINED, CARD_OK, IBAN_FAILS, IBAN_OK, collect_all, payer_with

D = Decimal


def test_finalizing_charges_the_default_card_and_pays_the_invoice(world, connected):
    payer_with(world[0], connected, card=CARD_OK)
    invoice = april_open(world)
    assert invoice.status == "open" and invoice.amount_due == D("35.70")
    [message] = OutboxMessage.objects.filter(kind="payments.collect")
    assert message.key == f"collect:{invoice.pk}"
    collect_all()
    invoice.refresh_from_db()
    [payment] = Payment.objects.all()
    assert (payment.status, payment.amount, payment.currency, payment.number) == ("succeeded", D("35.70"), "EUR", 1)
    assert payment.idempotency_key == f"inv{invoice.pk}-1" and payment.gateway_payment_id.startswith("pi_")
    assert payment.settled_invoice and payment.applied_at is not None
    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == ("paid", D("0"), D("35.70"))
    assert list(payment.attempts.values_list("step", "outcome")) == [("create", "done"), ("confirm", "done")]
    assert connected.confirms() == 1
    # collected again (a redelivered message): nothing more happens
    assert invoice_collect(invoice_id=invoice.pk) is None
    assert connected.confirms() == 1 and Payment.objects.count() == 1


def test_manual_collection_writes_no_collection(world, connected):
    payer_with(world[0], connected, card=CARD_OK)
    collection_method_set(actor=None, organization=world[0], method="manual")
    invoice = april_open(world)
    assert invoice.status == "open"
    assert not OutboxMessage.objects.filter(kind="payments.collect").exists()


def test_no_default_method_charges_nothing(world, connected):
    invoice = april_open(world)
    assert not OutboxMessage.objects.filter(kind="payments.collect").exists()
    assert invoice_collect(invoice_id=invoice.pk) is None
    assert not Payment.objects.exists()
    assert Invoice.objects.get(pk=invoice.pk).status == "open"
    assert connected.requests == {}


@pytest.mark.parametrize(
    ("card", "failure"),
    [
        (CARD_DECLINED, "soft_decline"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
        ("4000000000009979", "hard_decline"),
        ("4000000000000119", "processing_error"),
    ],
)
def test_a_declined_card_fails_the_payment_normalized_and_leaves_the_invoice_open(world, connected, card, failure):
    payer_with(world[0], connected, card=card)
    invoice = april_open(world)
    collect_all()
    [payment] = Payment.objects.all()
    assert (payment.status, payment.failure_code) == ("failed", failure)
    assert payment.applied_at is None and not payment.settled_invoice
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == ("open", D("35.70"), D("0"))
    assert list(payment.attempts.values_list("step", "outcome", "failure_code")) == [
        ("create", "done", ""),
        ("confirm", "declined", failure),
    ]
    assert not CreditEntry.objects.filter(organization=world[0]).exists()


def test_3d_secure_requires_action_and_leaves_the_invoice_open(world, connected):
    payer_with(world[0], connected, card=CARD_3DS)
    invoice = april_open(world)
    collect_all()
    [payment] = Payment.objects.all()
    assert (payment.status, payment.failure_code) == ("requires_action", "authentication_required")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("open", D("0"))


def test_sepa_debit_stays_processing_until_its_webhook(world, connected):
    # localstripe settles a good IBAN at once; the failing one is processing, then fails ~0.5 s later
    payer_with(world[0], connected, iban=IBAN_FAILS)
    invoice = april_open(world)
    collect_all()
    [payment] = Payment.objects.all()
    assert (payment.status, payment.method_type) == ("processing", "sepa_debit")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("open", D("0"))


def test_sepa_debit_that_settles_at_once_pays(world, connected):
    payer_with(world[0], connected, iban=IBAN_OK)
    invoice = april_open(world)
    collect_all()
    assert Payment.objects.get().status == "succeeded"
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


def test_gateway_down_records_an_errored_attempt_and_the_retry_charges_once(world, connected):
    payer_with(world[0], connected, card=CARD_OK)
    invoice = april_open(world)
    connected.down = True
    collect_all()
    [payment] = Payment.objects.all()
    assert payment.status == "pending" and payment.gateway_payment_id is None
    assert list(payment.attempts.values_list("step", "outcome", "failure_code")) == [
        ("create", "errored", "gateway_down")
    ]
    [message] = OutboxMessage.objects.filter(kind="payments.collect")
    assert (message.status, message.attempts) == ("failed", 1)
    connected.down = False
    assert invoice_collect(invoice_id=invoice.pk).status == "succeeded"
    assert Payment.objects.count() == 1 and connected.confirms() == 1
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


class Killed(BaseException):
    """Stands for SIGKILL at a fault point: nothing after it runs, no handler catches it."""


@pytest.mark.parametrize("point", ["payments.after_create", "payments.after_confirm"])
def test_killed_between_the_charge_and_its_record_a_rerun_never_charges_twice(world, connected, monkeypatch, point):
    payer_with(world[0], connected, card=CARD_OK)
    invoice = april_open(world)

    def fault(name):
        if name == point:
            raise Killed(name)

    monkeypatch.setattr("payments.services.collection.fault_point", fault)
    with pytest.raises(Killed):
        invoice_collect(invoice_id=invoice.pk)
    [payment] = Payment.objects.all()
    assert payment.status == "pending"
    assert connected.confirms() == (1 if point == "payments.after_confirm" else 0)
    monkeypatch.setattr("payments.services.collection.fault_point", lambda name: None)
    payment = invoice_collect(invoice_id=invoice.pk)
    assert payment.status == "succeeded"
    assert connected.confirms() == 1  # the one charge
    # one intent made at the gateway: a second create with the same key is answered from its first
    assert connected.requests["POST /v1/payment_intents"] == 1
    steps = list(payment.attempts.values_list("step", "outcome"))
    if point == "payments.after_confirm":
        assert steps == [("create", "done"), ("confirm", "started"), ("recover", "done")]
    else:
        # the create's answer was never recorded: the same key made it again (one intent at Stripe)
        assert steps == [("create", "started"), ("create", "done"), ("confirm", "done")]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", D("35.70"))
