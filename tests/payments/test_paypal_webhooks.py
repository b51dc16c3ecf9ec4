"""PayPal webhook verification: events signed by the fake as PayPal signs them, the certificate
fetched over https from the fake (its host added to the allow-list by configuration), and every
way a request can fail to be a genuine, fresh event for this webhook."""

from __future__ import annotations

import datetime as dt
import json
import time
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from payments.paypal import PAYPAL_CERT_HOSTS, CertificateSource, PayPalConfig, PayPalGateway, WebhookRejected
from payments.paypal.types import EventKind, FailureCode
from payments.paypal.webhooks import _SOURCES, event_parse
from tests.receiver import receiver
from tests.support.paypal_fake import PayPalFake


@pytest.fixture(scope="module")
def fake():
    with PayPalFake() as server:
        yield server


@pytest.fixture
def certificates(fake):
    return CertificateSource(allowed_hosts=frozenset({fake.cert_host}), ca_bundle=fake.ca_bundle)


@pytest.fixture
def gateway(fake, certificates):
    config = PayPalConfig(fake.base_url, fake.client_id, fake.client_secret, fake.webhook_id)
    return PayPalGateway(config, certificates=certificates)


CAPTURE = {
    "id": "5O190127TN364715T",
    "status": "COMPLETED",
    "amount": {"currency_code": "USD", "value": "12.50"},
    "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715X"}},
}


def _cert_fetches(fake) -> int:
    return sum(1 for _m, path in fake.requests if path.startswith("/v1/notifications/certs/"))


def _rejected(gateway, body, headers) -> str:
    with pytest.raises(WebhookRejected) as refused:
        gateway.parse_webhook(body=body, headers=headers)
    return refused.value.reason


def test_valid_event_is_accepted_and_normalized(gateway, fake):
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    event = gateway.parse_webhook(body=body, headers=fake.sign(body))
    assert event.id == json.loads(body)["id"]
    assert (event.kind, event.gateway_type) == (EventKind.CHARGE_SUCCEEDED, "PAYMENT.CAPTURE.COMPLETED")
    assert (event.charge_id, event.order_id, event.resource_status) == (
        "5O190127TN364715T",
        "5O190127TN364715X",
        "COMPLETED",
    )
    assert (event.amount, event.currency, event.failure) == (Decimal("12.50"), "USD", None)
    assert event.occurred_at is not None and event.occurred_at.tzinfo is not None


def test_headers_are_matched_case_insensitively(gateway, fake):
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    headers = {k.lower(): v for k, v in fake.sign(body).items()}
    assert gateway.parse_webhook(body=body, headers=headers).kind is EventKind.CHARGE_SUCCEEDED


def test_forged_signature_is_refused(gateway, fake):
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _rejected(gateway, body, fake.sign(body, key=forger)) == "bad_signature"


def test_signature_that_is_not_base64_is_refused(gateway, fake):
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    headers = fake.sign(body) | {"PAYPAL-TRANSMISSION-SIG": "not*base64!"}
    assert _rejected(gateway, body, headers) == "bad_signature"


@pytest.mark.parametrize("offset", [dt.timedelta(minutes=-6), dt.timedelta(minutes=6), dt.timedelta(days=-2)])
def test_stale_or_future_timestamp_is_refused(gateway, fake, offset):
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    sent = (dt.datetime.now(dt.UTC) + offset).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _rejected(gateway, body, fake.sign(body, transmission_time=sent)) == "stale"


def test_timestamp_inside_the_tolerance_is_accepted(gateway, fake):
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    sent = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=4, seconds=50)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert gateway.parse_webhook(body=body, headers=fake.sign(body, transmission_time=sent)).id


def test_event_for_another_webhook_id_is_refused(gateway, fake):
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    assert _rejected(gateway, body, fake.sign(body, webhook_id="WHOTHERTENANT01")) == "bad_signature"


def test_tampered_body_is_refused(gateway, fake):
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    headers = fake.sign(body)
    tampered = body.replace(b'"12.50"', b'"1250.00"')
    assert tampered != body
    assert _rejected(gateway, tampered, headers) == "bad_signature"


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://evil.example/v1/notifications/certs/CERT-1",
        "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-1",
        "https://api.paypal.com@evil.example/v1/notifications/certs/CERT-1",
        "https://{fake_host}@127.0.0.1:{port}/v1/notifications/certs/{name}",
        "https://127.0.0.1:{port}/v1/notifications/certs/{name}",
        "http://{fake_host}:{port}/v1/notifications/certs/{name}",
    ],
)
def test_certificate_url_off_the_allowed_hosts_is_refused_without_fetching(gateway, fake, cert_url):
    # The last three point at the fake's real certificate: refused for the host or the scheme alone.
    port, name = fake.cert_url.split(":")[2].split("/")[0], fake.cert_url.rsplit("/", 1)[-1]
    url = cert_url.format(fake_host=fake.cert_host, port=port, name=name)
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    fetches = _cert_fetches(fake)
    assert _rejected(gateway, body, fake.sign(body, cert_url=url)) == "cert_url_refused"
    assert _cert_fetches(fake) == fetches


def test_default_allow_list_is_paypals_and_refuses_the_fake(fake):
    assert {"api.paypal.com", "api.sandbox.paypal.com", "api-m.paypal.com", "api-m.sandbox.paypal.com"} == set(
        PAYPAL_CERT_HOSTS
    )
    gateway = PayPalGateway(
        PayPalConfig(fake.base_url, fake.client_id, fake.client_secret, fake.webhook_id),
        certificates=CertificateSource(ca_bundle=fake.ca_bundle),
    )
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    assert _rejected(gateway, body, fake.sign(body)) == "cert_url_refused"


def test_certificate_is_fetched_once_and_cached(fake, certificates):
    gateway = PayPalGateway(
        PayPalConfig(fake.base_url, fake.client_id, fake.client_secret, fake.webhook_id), certificates=certificates
    )
    fetches = _cert_fetches(fake)
    for _ in range(3):
        body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
        gateway.parse_webhook(body=body, headers=fake.sign(body))
    assert _cert_fetches(fake) == fetches + 1


def test_certificate_from_an_untrusted_tls_server_is_unavailable(fake):
    # The right host, but TLS is checked against the default trust store, which lacks the fake's CA.
    gateway = PayPalGateway(
        PayPalConfig(fake.base_url, fake.client_id, fake.client_secret, fake.webhook_id),
        certificates=CertificateSource(allowed_hosts=frozenset({fake.cert_host})),
    )
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    with pytest.raises(WebhookRejected) as refused:
        gateway.parse_webhook(body=body, headers=fake.sign(body))
    assert (refused.value.reason, refused.value.retryable) == ("cert_unavailable", True)


def test_unknown_certificate_url_on_the_allowed_host_is_unavailable(gateway, fake):
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    url = fake.cert_url.rsplit("/", 1)[0] + "/CERT-unknown"
    assert _rejected(gateway, body, fake.sign(body, cert_url=url)) == "cert_unavailable"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"PAYPAL-TRANSMISSION-SIG": ""}, "missing_header"),
        ({"PAYPAL-CERT-URL": ""}, "missing_header"),
        ({"PAYPAL-AUTH-ALGO": "SHA1withRSA"}, "unsupported_algorithm"),
        ({"PAYPAL-TRANSMISSION-TIME": "yesterday"}, "malformed_header"),
        ({"PAYPAL-TRANSMISSION-TIME": "2026-01-01T00:00:00"}, "malformed_header"),
    ],
)
def test_malformed_headers_are_refused(gateway, fake, change, reason):
    body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
    assert _rejected(gateway, body, fake.sign(body) | change) == reason


def test_signed_body_that_is_not_an_event_is_refused(gateway, fake):
    for body in (b"not json", b"[]", b'{"event_type": "PAYMENT.CAPTURE.COMPLETED"}'):
        assert _rejected(gateway, body, fake.sign(body)) == "malformed_body"


def test_allowed_hosts_and_trust_store_come_from_settings(fake, settings):
    settings.PAYPAL_WEBHOOK_CERT_HOSTS = [fake.cert_host.upper()]
    settings.PAYPAL_WEBHOOK_CERT_CA_BUNDLE = fake.ca_bundle
    gateway = PayPalGateway(PayPalConfig(fake.base_url, fake.client_id, fake.client_secret, fake.webhook_id))
    try:
        body = fake.event_body("PAYMENT.CAPTURE.COMPLETED", "capture", CAPTURE)
        assert gateway.parse_webhook(body=body, headers=fake.sign(body)).kind is EventKind.CHARGE_SUCCEEDED
        del settings.PAYPAL_WEBHOOK_CERT_HOSTS
        assert _rejected(gateway, body, fake.sign(body)) == "cert_url_refused"
    finally:
        _SOURCES.clear()


def test_events_delivered_by_the_fake_verify(fake):
    """End to end: a charge and a refund at the fake; the webhooks it posts to a real local
    receiver verify and normalize."""
    with receiver() as hooks:
        fake.webhook_url = hooks.url
        try:
            config = PayPalConfig(fake.base_url, fake.client_id, fake.client_secret, fake.webhook_id)
            certificates = CertificateSource(allowed_hosts=frozenset({fake.cert_host}), ca_bundle=fake.ca_bundle)
            gateway = PayPalGateway(config, certificates=certificates)
            session = gateway.start_setup(
                customer=gateway.ensure_customer(merchant_customer_id="org-hooks"),
                return_url="http://r.test/ok",
                cancel_url="http://r.test/no",
                idempotency_key="hooks-setup",
            )
            fake.approve_setup_token(session.setup_token_id, email="insufficient@example.com")
            method = gateway.finish_setup(setup_token_id=session.setup_token_id, idempotency_key="hooks-finish")
            declined = gateway.charge(method_id=method.id, amount=Decimal("8.00"), currency="USD", idempotency_key="h1")
            deadline = time.monotonic() + 10
            while len(hooks.requests) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            fake.webhook_url = None
    events = [gateway.parse_webhook(body=r.body, headers=r.headers) for r in hooks.requests]
    assert [(e.kind, e.resource_id) for e in events] == [
        (EventKind.METHOD_SAVED, method.id),
        (EventKind.CHARGE_FAILED, declined.charge_id),
    ]
    assert (events[1].failure.code, events[1].failure.gateway_code) == (FailureCode.INSUFFICIENT_FUNDS, "5120")


def test_refund_and_denied_events_are_normalized():
    refund = event_parse(
        {
            "id": "WH-1",
            "event_type": "PAYMENT.CAPTURE.REFUNDED",
            "create_time": "2026-12-01T10:00:00Z",
            "resource": {
                "id": "R1",
                "status": "COMPLETED",
                "amount": {"currency_code": "EUR", "value": "4.00"},
                "links": [{"rel": "up", "href": "https://api-m.paypal.com/v2/payments/captures/C77"}],
            },
        }
    )
    assert (refund.kind, refund.resource_id, refund.charge_id, refund.amount, refund.currency) == (
        EventKind.CHARGE_REFUNDED,
        "R1",
        "C77",
        Decimal("4.00"),
        "EUR",
    )
    denied = event_parse(
        {"id": "WH-2", "event_type": "PAYMENT.CAPTURE.DENIED", "resource": {"id": "C78", "status": "DECLINED"}}
    )
    assert (denied.kind, denied.charge_id, denied.failure.code, denied.failure.gateway_code) == (
        EventKind.CHARGE_FAILED,
        "C78",
        FailureCode.HARD_DECLINE,
        "PAYMENT.CAPTURE.DENIED",
    )
    other = event_parse({"id": "WH-3", "event_type": "CUSTOMER.DISPUTE.CREATED", "resource": []})
    assert (other.kind, other.resource_id, other.charge_id) == (EventKind.OTHER, None, None)
