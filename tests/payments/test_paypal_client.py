"""The PayPal adapter against the local PayPal fake, over HTTP: vaulting, off-session charges and
their failures, idempotent retries, refunds, pay-now checkout."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from payments.paypal import PayPalConfig, PayPalError, PayPalGateway
from payments.paypal.types import ChargeStatus, FailureCode, RefundStatus
from tests.support.paypal_fake import PayPalFake


@pytest.fixture(scope="module")
def fake():
    with PayPalFake() as server:
        yield server


@pytest.fixture
def gateway(fake):
    return PayPalGateway(PayPalConfig(fake.base_url, fake.client_id, fake.client_secret, fake.webhook_id, timeout=10))


def _vault(gateway, fake, *, email="payer@example.com", key="org-1"):
    session = gateway.start_setup(
        customer=gateway.ensure_customer(merchant_customer_id=key),
        return_url="http://portal.test/paypal/return",
        cancel_url="http://portal.test/paypal/cancel",
        idempotency_key=f"setup-{key}-{email}",
    )
    fake.approve_setup_token(session.setup_token_id, email=email)
    return gateway.finish_setup(setup_token_id=session.setup_token_id, idempotency_key=f"finish-{key}-{email}")


@pytest.fixture
def method(gateway, fake):
    return _vault(gateway, fake)


def _orders(fake) -> int:
    return sum(1 for m, p in fake.requests if (m, p) == ("POST", "/v2/checkout/orders"))


def test_setup_vaults_a_paypal_wallet_after_approval(gateway, fake):
    customer = gateway.ensure_customer(merchant_customer_id="org-42")
    assert (customer.id, customer.merchant_customer_id) == (None, "org-42")
    session = gateway.start_setup(
        customer=customer, return_url="http://r.test/ok", cancel_url="http://r.test/no", idempotency_key="setup-42"
    )
    assert session.status == "PAYER_ACTION_REQUIRED"
    assert session.approve_url == f"{fake.base_url}/agreements/approve?approval_session_id={session.setup_token_id}"
    assert fake.setup_tokens[session.setup_token_id]["customer"] == {
        "id": session.customer_id,
        "merchant_customer_id": "org-42",
    }

    tokens_before = len(fake.payment_tokens)
    with pytest.raises(PayPalError) as refused:
        gateway.finish_setup(setup_token_id=session.setup_token_id, idempotency_key="finish-42-early")
    assert (refused.value.failure.code, refused.value.failure.gateway_code) == (
        FailureCode.PROCESSING_ERROR,
        "SETUP_TOKEN_NOT_APPROVED",
    )
    assert len(fake.payment_tokens) == tokens_before

    fake.approve_setup_token(session.setup_token_id, email="ana@example.com")
    method = gateway.finish_setup(setup_token_id=session.setup_token_id, idempotency_key="finish-42")
    assert (method.kind, method.label, method.customer_id) == ("paypal", "ana@example.com", session.customer_id)
    assert method.id in fake.payment_tokens
    # A second setup for the same customer names PayPal's customer id, so tokens stay together.
    again = gateway.start_setup(
        customer=gateway.ensure_customer(merchant_customer_id="org-42", existing_id=session.customer_id),
        return_url="http://r.test/ok",
        cancel_url="http://r.test/no",
        idempotency_key="setup-42-second",
    )
    assert again.customer_id == session.customer_id


def test_approval_page_returns_the_payer_to_the_return_url(gateway, fake):
    session = gateway.start_setup(
        customer=gateway.ensure_customer(merchant_customer_id="org-7"),
        return_url="http://portal.test/back",
        cancel_url="http://portal.test/cancel",
        idempotency_key="setup-page",
    )
    page = requests.get(session.approve_url, timeout=5)
    assert page.status_code == 200 and "Agree and Continue" in page.text
    answer = requests.post(
        session.approve_url,
        data={"token": session.setup_token_id, "email": "page@example.com", "action": "approve"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 303
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "http://portal.test/back"
    assert parse_qs(location.query)["approval_token_id"] == [session.setup_token_id]
    method = gateway.finish_setup(setup_token_id=session.setup_token_id, idempotency_key="finish-page")
    assert method.label == "page@example.com"


def test_charge_succeeds_and_is_captured_once(gateway, fake, method):
    result = gateway.charge(
        method_id=method.id,
        amount=Decimal("12.50"),
        currency="usd",
        idempotency_key="payment:1:attempt:1",
        invoice_id="INV-0001",
    )
    assert result.status is ChargeStatus.SUCCEEDED
    assert (result.amount, result.currency, result.failure) == (Decimal("12.50"), "USD", None)
    capture = fake.captures[result.charge_id]
    assert capture["status"] == "COMPLETED"
    assert capture["amount"] == {"currency_code": "USD", "value": "12.50"}
    assert capture["invoice_id"] == "INV-0001"
    assert capture["supplementary_data"]["related_ids"]["order_id"] == result.order_id
    assert fake.orders[result.order_id]["payment_source"] == {"paypal": {"email_address": "payer@example.com"}}


@pytest.mark.parametrize(
    ("amount", "status", "code", "gateway_code", "captured"),
    [
        ("9.05", ChargeStatus.FAILED, FailureCode.SOFT_DECLINE, "INSTRUMENT_DECLINED", False),
        ("9.06", ChargeStatus.FAILED, FailureCode.HARD_DECLINE, "TRANSACTION_REFUSED", False),
        ("9.07", ChargeStatus.REQUIRES_ACTION, FailureCode.AUTHENTICATION_REQUIRED, "PAYER_ACTION_REQUIRED", False),
        ("9.20", ChargeStatus.FAILED, FailureCode.INSUFFICIENT_FUNDS, "5120", True),
        ("9.40", ChargeStatus.FAILED, FailureCode.EXPIRED, "5400", True),
        ("9.50", ChargeStatus.FAILED, FailureCode.HARD_DECLINE, "9500", True),
        ("9.51", ChargeStatus.FAILED, FailureCode.SOFT_DECLINE, "9100", True),
        ("9.90", ChargeStatus.ERROR, FailureCode.GATEWAY_DOWN, "INTERNAL_SERVER_ERROR", False),
        ("9.91", ChargeStatus.ERROR, FailureCode.GATEWAY_DOWN, "SERVICE_UNAVAILABLE", False),
    ],
)
def test_charge_failures_are_normalized(gateway, fake, method, amount, status, code, gateway_code, captured):
    captures_before = dict(fake.captures)
    result = gateway.charge(method_id=method.id, amount=Decimal(amount), currency="USD", idempotency_key=f"f-{amount}")
    assert result.status is status
    assert (result.failure.code, result.failure.gateway_code) == (code, gateway_code)
    new = {k: v for k, v in fake.captures.items() if k not in captures_before}
    if captured:
        # A processor decline is a capture PayPal records as DECLINED: nothing was taken.
        assert list(new) == [result.charge_id]
        assert new[result.charge_id]["status"] == "DECLINED"
    else:
        assert new == {}
        assert result.charge_id is None


@pytest.mark.parametrize(
    ("email", "code"),
    [
        ("decline@example.com", FailureCode.HARD_DECLINE),
        ("soft-decline@example.com", FailureCode.SOFT_DECLINE),
        ("insufficient@example.com", FailureCode.INSUFFICIENT_FUNDS),
    ],
)
def test_payer_chosen_at_approval_decides_every_charge(gateway, fake, email, code):
    method = _vault(gateway, fake, email=email, key="org-magic")
    result = gateway.charge(method_id=method.id, amount=Decimal("30.00"), currency="USD", idempotency_key=f"m-{email}")
    assert (result.status, result.failure.code) == (ChargeStatus.FAILED, code)


def test_same_idempotency_key_gives_the_same_capture(gateway, fake, method):
    first = gateway.charge(method_id=method.id, amount=Decimal("40.00"), currency="USD", idempotency_key="inv-7:1")
    count = fake.capture_count()
    again = gateway.charge(method_id=method.id, amount=Decimal("40.00"), currency="USD", idempotency_key="inv-7:1")
    assert again == first
    assert fake.capture_count() == count
    other = gateway.charge(method_id=method.id, amount=Decimal("40.00"), currency="USD", idempotency_key="inv-7:2")
    assert other.charge_id != first.charge_id
    assert fake.capture_count() == count + 1


def test_lost_answer_then_retry_with_the_same_key_charges_once(gateway, fake, method):
    """The crash case: PayPal captured, the answer never arrived. The caller records an error and
    retries later with the same key; PayPal answers the original capture."""
    count = fake.capture_count()
    fake.lose_next_response()
    lost = gateway.charge(method_id=method.id, amount=Decimal("25.00"), currency="USD", idempotency_key="inv-9:1")
    assert (lost.status, lost.failure.code, lost.charge_id) == (ChargeStatus.ERROR, FailureCode.GATEWAY_DOWN, None)
    assert fake.capture_count() == count + 1
    recovered = gateway.charge(method_id=method.id, amount=Decimal("25.00"), currency="USD", idempotency_key="inv-9:1")
    assert recovered.status is ChargeStatus.SUCCEEDED
    assert fake.capture_count() == count + 1
    assert fake.captures[recovered.charge_id]["amount"]["value"] == "25.00"


def test_gateway_down_then_retry(gateway, fake, method):
    count = fake.capture_count()
    fake.fail_next(1, status=503)
    down = gateway.charge(method_id=method.id, amount=Decimal("5.00"), currency="USD", idempotency_key="inv-10:1")
    assert (down.status, down.failure.code) == (ChargeStatus.ERROR, FailureCode.GATEWAY_DOWN)
    assert fake.capture_count() == count
    later = gateway.charge(method_id=method.id, amount=Decimal("5.00"), currency="USD", idempotency_key="inv-10:1")
    assert later.status is ChargeStatus.SUCCEEDED
    assert fake.capture_count() == count + 1


def test_unreachable_paypal_is_gateway_down():
    gateway = PayPalGateway(PayPalConfig("http://127.0.0.1:9", "id", "secret", "WH1", timeout=2))
    result = gateway.charge(method_id="PT1", amount=Decimal("1.00"), currency="USD", idempotency_key="k")
    assert (result.status, result.failure.code, result.failure.gateway_code) == (
        ChargeStatus.ERROR,
        FailureCode.GATEWAY_DOWN,
        "ConnectionError",
    )


def test_wrong_credentials_are_a_processing_error_and_create_nothing(fake, method):
    gateway = PayPalGateway(PayPalConfig(fake.base_url, fake.client_id, "wrong", fake.webhook_id))
    orders = _orders(fake)
    result = gateway.charge(method_id=method.id, amount=Decimal("1.00"), currency="USD", idempotency_key="cred")
    assert (result.status, result.failure.code, result.failure.gateway_code) == (
        ChargeStatus.FAILED,
        FailureCode.PROCESSING_ERROR,
        "invalid_client",
    )
    assert _orders(fake) == orders


@pytest.mark.parametrize(("amount", "currency"), [("1.005", "USD"), ("100.5", "JPY"), ("0", "USD"), ("-3.00", "EUR")])
def test_amounts_paypal_would_refuse_are_refused_before_any_request(gateway, fake, method, amount, currency):
    requests_before = len(fake.requests)
    with pytest.raises(ValueError):
        gateway.charge(method_id=method.id, amount=Decimal(amount), currency=currency, idempotency_key="amt")
    assert len(fake.requests) == requests_before


def test_zero_decimal_currency(gateway, fake, method):
    result = gateway.charge(method_id=method.id, amount=Decimal("1500"), currency="JPY", idempotency_key="jpy-1")
    assert (result.status, result.amount, result.currency) == (ChargeStatus.SUCCEEDED, Decimal("1500"), "JPY")
    assert fake.captures[result.charge_id]["amount"] == {"currency_code": "JPY", "value": "1500"}


def test_removed_method_is_expired(gateway, fake):
    method = _vault(gateway, fake, key="org-removed")
    gateway.remove_method(method_id=method.id)
    result = gateway.charge(method_id=method.id, amount=Decimal("3.00"), currency="USD", idempotency_key="rm-1")
    assert (result.status, result.failure.code, result.failure.gateway_code) == (
        ChargeStatus.FAILED,
        FailureCode.EXPIRED,
        "AGREEMENT_ALREADY_CANCELLED",
    )
    with pytest.raises(PayPalError) as gone:
        gateway.remove_method(method_id=method.id)
    assert gone.value.failure.gateway_code == "INVALID_RESOURCE_ID"


def test_refund_partial_then_full(gateway, fake, method):
    charge = gateway.charge(method_id=method.id, amount=Decimal("10.00"), currency="USD", idempotency_key="rf-c")
    partial = gateway.refund(
        charge_id=charge.charge_id, amount=Decimal("4.00"), currency="USD", idempotency_key="refund:1"
    )
    assert (partial.status, partial.amount, partial.currency) == (RefundStatus.SUCCEEDED, Decimal("4.00"), "USD")
    assert fake.captures[charge.charge_id]["status"] == "PARTIALLY_REFUNDED"
    replay = gateway.refund(
        charge_id=charge.charge_id, amount=Decimal("4.00"), currency="USD", idempotency_key="refund:1"
    )
    assert replay == partial
    assert [r["amount"]["value"] for r in fake.refunds.values() if r["_capture_id"] == charge.charge_id] == ["4.00"]

    too_much = gateway.refund(
        charge_id=charge.charge_id, amount=Decimal("6.01"), currency="USD", idempotency_key="refund:2"
    )
    assert (too_much.status, too_much.failure.code, too_much.failure.gateway_code) == (
        RefundStatus.FAILED,
        FailureCode.PROCESSING_ERROR,
        "REFUND_AMOUNT_EXCEEDED",
    )
    assert fake.captures[charge.charge_id]["status"] == "PARTIALLY_REFUNDED"

    rest = gateway.refund(charge_id=charge.charge_id, idempotency_key="refund:3")
    assert (rest.status, rest.amount) == (RefundStatus.SUCCEEDED, Decimal("6.00"))
    assert fake.captures[charge.charge_id]["status"] == "REFUNDED"
    assert gateway.fetch_charge(charge_id=charge.charge_id).status is ChargeStatus.SUCCEEDED

    again = gateway.refund(charge_id=charge.charge_id, idempotency_key="refund:4")
    assert (again.status, again.failure.gateway_code) == (RefundStatus.FAILED, "CAPTURE_FULLY_REFUNDED")
    assert len([r for r in fake.refunds.values() if r["_capture_id"] == charge.charge_id]) == 2


def test_refund_full_at_once(gateway, fake, method):
    charge = gateway.charge(method_id=method.id, amount=Decimal("7.25"), currency="EUR", idempotency_key="rf-full")
    refund = gateway.refund(charge_id=charge.charge_id, idempotency_key="refund:full")
    assert (refund.status, refund.amount, refund.currency) == (RefundStatus.SUCCEEDED, Decimal("7.25"), "EUR")
    assert fake.captures[charge.charge_id]["status"] == "REFUNDED"


def test_pending_capture_settles_later(gateway, fake, method):
    charge = gateway.charge(method_id=method.id, amount=Decimal("9.80"), currency="USD", idempotency_key="pend-1")
    assert (charge.status, charge.failure) == (ChargeStatus.PENDING, None)
    assert gateway.fetch_charge(charge_id=charge.charge_id).status is ChargeStatus.PENDING
    fake.settle_capture(charge.charge_id)
    settled = gateway.fetch_charge(charge_id=charge.charge_id)
    assert (settled.status, settled.order_id, settled.amount) == (
        ChargeStatus.SUCCEEDED,
        charge.order_id,
        Decimal("9.80"),
    )
    assert gateway.fetch_order(order_id=charge.order_id).charge_id == charge.charge_id


def test_fetch_unknown_charge_reports_the_error(gateway):
    result = gateway.fetch_charge(charge_id="CNOPE")
    assert (result.status, result.failure.code, result.failure.gateway_code) == (
        ChargeStatus.ERROR,
        FailureCode.PROCESSING_ERROR,
        "INVALID_RESOURCE_ID",
    )


def test_pay_now_checkout_needs_approval_then_captures(gateway, fake):
    started = gateway.start_checkout(
        amount=Decimal("19.99"),
        currency="USD",
        return_url="http://portal.test/paid",
        cancel_url="http://portal.test/cancel",
        idempotency_key="paynow-1",
        invoice_id="INV-0042",
    )
    assert started.status is ChargeStatus.REQUIRES_ACTION
    assert started.approve_url == f"{fake.base_url}/checkoutnow?token={started.order_id}"
    early = gateway.capture(order_id=started.order_id, idempotency_key="paynow-1:capture-early")
    assert (early.status, early.failure.gateway_code) == (ChargeStatus.FAILED, "ORDER_NOT_APPROVED")
    fake.approve_order(started.order_id)
    paid = gateway.capture(order_id=started.order_id, idempotency_key="paynow-1:capture")
    assert (paid.status, paid.order_id, paid.amount) == (ChargeStatus.SUCCEEDED, started.order_id, Decimal("19.99"))
    assert fake.captures[paid.charge_id]["invoice_id"] == "INV-0042"
