"""PayPal behind the gateway interface, against the local fake (tests/support/paypal_fake.py): an
organization with a vaulted PayPal wallet has its invoice collected on finalization through the
same outbox, ledger and crash-safe steps as Stripe; refunds go to the capture; PayPal's webhooks
(verified with the fake's certificate, stored once per event id) settle, deny and refund through
the same ledger code, each applied once."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from auditlog.models import LogEntry

from invoicing.models import Invoice
from payments.gateways import gateway_get
from payments.models import GatewayEventRecord, GatewaySettings, Payment, PaymentCustomer
from payments.paypal import PayPalConfig, PayPalGateway
from payments.paypal import types as pp
from payments.services.refunds import RefundInput, payment_refund
from tests.invoicing.test_invoice_api import april_open
from tests.payments.conftest import collect_all
from tests.support.paypal_fake import PayPalFake

D = Decimal


@pytest.fixture
def fake(in_a, settings):
    with PayPalFake() as server:
        settings.PAYPAL_API_BASE = server.base_url
        settings.PAYPAL_WEBHOOK_CERT_HOSTS = [server.cert_host]
        settings.PAYPAL_WEBHOOK_CERT_CA_BUNDLE = server.ca_bundle
        row = GatewaySettings(paypal_client_id=server.client_id, paypal_webhook_id=server.webhook_id)
        row.paypal_client_secret_set(server.client_secret)
        row.save()
        yield server


def vaulted(organization, fake) -> PaymentCustomer:
    """What the payer does on PayPal's approval page, and the portal's return: a vaulted wallet."""
    client = PayPalGateway(PayPalConfig(fake.base_url, fake.client_id, fake.client_secret, fake.webhook_id))
    customer = client.ensure_customer(merchant_customer_id=organization.external_id)
    session = client.start_setup(
        customer=customer, return_url="https://x.example/ok", cancel_url="https://x.example/no", idempotency_key="s1"
    )
    fake.approve_setup_token(session.setup_token_id)
    method = client.finish_setup(setup_token_id=session.setup_token_id, idempotency_key="f1")
    return PaymentCustomer.objects.create(
        organization=organization,
        paypal_customer_id=method.customer_id,
        paypal_token_id=method.id,
        paypal_label="PayPal",
        default_payment_method_id=method.id,
        default_method_type="paypal",
        default_method_label="PayPal",
    )


def test_secret_is_stored_encrypted(fake):
    row = GatewaySettings.objects.get()
    assert fake.client_secret not in row.paypal_client_secret_encrypted
    assert row.paypal_client_secret() == fake.client_secret and row.paypal_ready


def test_vaulted_wallet_collected_on_finalization_once(world, fake):
    vaulted(world[0], fake)
    invoice = april_open(world)
    collect_all()
    [payment] = Payment.objects.all()
    assert (payment.gateway, payment.status, payment.amount, payment.currency) == (
        "paypal",
        "succeeded",
        D("35.70"),
        "EUR",
    )
    [capture_id] = fake.captures
    assert payment.gateway_payment_id == capture_id and payment.settled_invoice
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == ("paid", D("0"), D("35.70"))
    assert list(payment.attempts.values_list("step", "outcome", "status_after")) == [
        ("create", "done", "created"),
        ("confirm", "done", "succeeded"),
    ]
    assert fake.capture_count() == 1
    events = list(
        LogEntry.objects.get_for_object(payment)
        .filter(changes__has_key="event")
        .order_by("id")
        .values_list("changes__event__1", flat=True)
    )
    assert events == ["payment.created", "payment.succeeded"]


def test_lost_answer_then_rerun_charges_once(world, fake):
    """The capture is made, its answer lost: the rerun asks with the same PayPal-Request-Id."""
    vaulted(world[0], fake)
    invoice = april_open(world)
    from payments.services.collection import invoice_collect

    original = PayPalGateway.charge

    def lose(self, **kwargs):
        original(self, **kwargs)  # PayPal captured it; the process never hears back
        return pp.ChargeResult(
            pp.ChargeStatus.ERROR, None, None, None, None, pp.Failure(pp.FailureCode.GATEWAY_DOWN, "lost")
        )

    PayPalGateway.charge = lose
    try:
        with pytest.raises(Exception, match="PayPal unreachable"):
            invoice_collect(invoice_id=invoice.pk)
    finally:
        PayPalGateway.charge = original
    payment = Payment.objects.get()
    assert payment.status == "pending" and fake.capture_count() == 1
    invoice_collect(invoice_id=invoice.pk)
    payment.refresh_from_db()
    assert payment.status == "succeeded" and fake.capture_count() == 1
    assert list(payment.attempts.values_list("step", "outcome")) == [
        ("create", "done"),
        ("confirm", "errored"),
        ("recover", "done"),
        ("confirm", "done"),
    ]
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


def test_pending_capture_denied_by_webhook_applied_once(world, fake, client_a):
    vaulted(world[0], fake)
    invoice = april_open(world)
    Invoice.objects.filter(pk=invoice.pk).update(amount_due=D("9.80"))  # the fake's "PENDING review" amount
    collect_all()
    payment = Payment.objects.get()
    assert (payment.status, payment.amount) == ("processing", D("9.80"))
    capture = dict(fake.captures[payment.gateway_payment_id])
    capture.update(status="DECLINED", status_details={"reason": "DENIED"})
    body = fake.event_body(
        "PAYMENT.CAPTURE.DENIED", "capture", {k: v for k, v in capture.items() if not k.startswith("_")}
    )
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in fake.sign(body).items()}
    first = client_a.post("/payments/paypal/webhook", body, content_type="application/json", **headers)
    assert first.json() == {"received": True, "outcome": "applied"}
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "hard_decline")
    entries = LogEntry.objects.count()
    again = client_a.post("/payments/paypal/webhook", body, content_type="application/json", **headers)
    assert again.json() == {"received": True, "outcome": "duplicate"}
    assert GatewayEventRecord.objects.filter(gateway="paypal").count() == 1 and LogEntry.objects.count() == entries
    assert Invoice.objects.get(pk=invoice.pk).status == "open"


def test_refund_to_the_capture_and_its_refunded_webhook_applied_once(world, fake, client_a, monkeypatch):
    vaulted(world[0], fake)
    april_open(world)
    collect_all()
    payment = Payment.objects.get()
    original = PayPalGateway.refund

    def pending(self, **kwargs):  # PayPal answers some refunds PENDING (an eCheck capture)
        return dataclasses.replace(original(self, **kwargs), status=pp.RefundStatus.PENDING)

    monkeypatch.setattr(PayPalGateway, "refund", pending)
    refund = payment_refund(actor=None, payment_id=payment.pk, refund=RefundInput(amount=D("10.00"), reason="Goodwill"))
    assert refund.status == "pending" and refund.gateway_refund_id in fake.refunds
    stored = fake.refunds[refund.gateway_refund_id]
    assert stored["amount"] == {"currency_code": "EUR", "value": "10.00"}
    resource = {k: v for k, v in stored.items() if not k.startswith("_")}
    resource["status"] = "COMPLETED"
    body = fake.event_body("PAYMENT.CAPTURE.REFUNDED", "refund", resource)
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in fake.sign(body).items()}
    first = client_a.post("/payments/paypal/webhook", body, content_type="application/json", **headers)
    assert first.json() == {"received": True, "outcome": "applied"}
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    again = client_a.post("/payments/paypal/webhook", body, content_type="application/json", **headers)
    assert again.json()["outcome"] == "duplicate"
    events = list(
        LogEntry.objects.get_for_object(refund)
        .filter(changes__has_key="event")
        .order_by("id")
        .values_list("changes__event__1", flat=True)
    )
    assert events == ["refund.created", "refund.succeeded"]
    assert Payment.objects.get().amount_refunded == D("10.00")


def test_forged_or_other_webhook_id_is_refused_and_writes_nothing(world, fake, client_a):
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", {"id": "X", "status": "COMPLETED"})
    for signed in (
        fake.sign(body, webhook_id="WH-ANOTHER-TENANT"),
        {**fake.sign(body), "PAYPAL-TRANSMISSION-SIG": "AAAA"},
    ):
        headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed.items()}
        response = client_a.post("/payments/paypal/webhook", body, content_type="application/json", **headers)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "webhook_rejected")
    assert not GatewayEventRecord.objects.exists()


def test_not_connected_is_refused(in_a, client_a):
    with pytest.raises(Exception, match="not connected"):
        gateway_get("paypal")
    response = client_a.post("/payments/paypal/webhook", b"{}", content_type="application/json")
    assert response.status_code == 400 and not GatewayEventRecord.objects.exists()
