"""Payments against localstripe (started by config.embedded for the test run, STRIPE_API_BASE)
through the gap-closing proxy of config/devstripe.py; the tenant's gateway settings
point at it by configuration only. A test plays Stripe.js's part (creating and attaching payment
methods with test card numbers at the fake), as a browser would: those numbers never reach our
code."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time

import pytest
import stripe

from config.devstripe import stripe_proxy
from core.models import OutboxMessage
from core.services.outbox import outbox_process
from payments.gateways import gateway_settings_forget
from payments.models import GatewaySettings
from payments.services.methods import payer_ensure, payment_method_default_set
from tests.invoicing.conftest import world  # noqa: F401  (the seller, plan and Acme)

SECRET_KEY = "sk_test_" + "a" * 24
PUBLISHABLE_KEY = "pk_test_" + "a" * 24
WEBHOOK_SECRET = "whsec_test_tenant_a"

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000341"  # attaches, declines on charge (generic)
CARD_3DS = "4000002500003155"
IBAN_OK = "DE89370400440532013000"
IBAN_FAILS = "DE62370400440532013001"  # localstripe fails it about 0.5 s after the charge


@pytest.fixture(autouse=True)
def gateway_settings_fresh():
    """The webhook endpoint's per-process read of the settings row (payments.gateways) from another
    test's rolled-back row must not leak into this one."""
    gateway_settings_forget()
    yield
    gateway_settings_forget()


@pytest.fixture(scope="session")
def localstripe_url() -> str:
    # localstripe itself: each test puts its own proxy in front (faults, request counts) rather
    # than going through the one config.embedded runs in front of it (STRIPE_API_BASE).
    url = os.environ.get("LOCALSTRIPE_URL") or os.environ.get("STRIPE_API_BASE", "")
    if not url.startswith("http://127.0.0.1"):
        pytest.skip("needs the localstripe that `config.embedded exec` starts (LOCALSTRIPE_URL)")
    return url


@pytest.fixture
def fake_stripe(localstripe_url, settings):
    with stripe_proxy(localstripe_url) as proxy:
        settings.STRIPE_API_BASE = proxy.url
        yield proxy


@pytest.fixture
def connected(in_a, fake_stripe):
    row = GatewaySettings(stripe_publishable_key=PUBLISHABLE_KEY)
    row.stripe_secret_key_set(SECRET_KEY)
    row.stripe_webhook_secret_set(WEBHOOK_SECRET)
    row.save()
    return fake_stripe


def sdk(proxy) -> stripe.StripeClient:
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": proxy.url}, max_network_retries=0)


def method_create(proxy, *, card: str = "", iban: str = "") -> str:
    """What Stripe.js does in the browser: the method made at the gateway from typed details."""
    client = sdk(proxy)
    if card:
        params = {"type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    else:
        params = {
            "type": "sepa_debit",
            "sepa_debit": {"iban": iban},
            "billing_details": {"name": "Acme GmbH", "email": "billing@acme.example"},
        }
    return client.v1.payment_methods.create(params=params).id


def payer_with(organization, proxy, **details):
    payer = payer_ensure(organization=organization)
    method = method_create(proxy, **details)
    sdk(proxy).v1.payment_methods.attach(method, params={"customer": payer.gateway_customer_id})
    return payment_method_default_set(actor=None, organization=organization, payment_method_id=method)


def collect_all() -> None:
    """What the worker does with the collection messages the finalization wrote."""
    ids = list(OutboxMessage.objects.filter(kind="payments.collect").values_list("pk", flat=True))
    outbox_process(ids=ids)


def signed(payload: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> tuple[bytes, str]:
    """A body and Stripe-Signature header exactly as Stripe signs them."""
    body = json.dumps(payload).encode()
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={t},v1={digest}"
