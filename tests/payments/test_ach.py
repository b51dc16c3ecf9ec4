"""US ACH debit end to end against the gap-closing proxy (localstripe has no `us_bank_account`;
config/devstripe.py answers it in Stripe's shapes): the debit stays processing after the confirm,
like SEPA, until Stripe's signed webhook settles it (succeeded → the invoice paid once) or
returns it days later (failed, normalized; the invoice still open). Stripe's test accounts pick
the outcome (routing 110000000; 000123456789 succeeds, 000222222227 returns for insufficient
funds (R01), 000111111113 for a closed account (R02))."""

from __future__ import annotations

import json
import time
import urllib.request
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from invoicing.models import Invoice, InvoicingSettings
from invoicing.services.billing_run import billing_run
from payments.models import GatewayEventRecord, Payment
from payments.services.collection import invoice_collect
from payments.services.inbound import gateway_events_apply
from payments.services.methods import payer_ensure, payment_method_default_set
from tests.factories import MeterFactory, OrganizationFactory, PlanFactory, SubscriptionFactory
from tests.helpers import utc
from tests.payments.conftest import WEBHOOK_SECRET, collect_all, sdk
from tests.receiver import receiver

D = Decimal
ROUTING = "110000000"
ACH_OK = "000123456789"
ACH_INSUFFICIENT = "000222222227"
ACH_CLOSED = "000111111113"
URL = "/payments/stripe/webhook"


@pytest.fixture
def us_world(in_a):
    """A US customer on a 30.00 USD plan, subscribed on 1 Apr 2027 (ACH debits dollars only)."""
    InvoicingSettings.objects.update_or_create(
        pk=1, defaults={"seller_country": "DE", "tax_registrations": ["DE"], "seller_name": "Seller GmbH"}
    )
    MeterFactory()
    PlanFactory(code="basic", name="Basic", currency="USD", base_fee="30.00", per_call=True)
    org = OrganizationFactory(external_id="acme", currency="USD", country="US", region="NY", name="Acme Inc")
    return org, SubscriptionFactory(organization=org, at=utc(2027, 4, 1))


def april_open(world) -> Invoice:
    billing_run(at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 4, 2))
    return Invoice.objects.get(organization=world[0], bill_point=utc(2027, 4, 1))


def ach_payer(organization, proxy, account: str):
    """What Stripe.js's bank account collection does in the browser: the method made at the
    gateway from typed details and saved through a SetupIntent; then made the default."""
    payer = payer_ensure(organization=organization)
    client = sdk(proxy)
    setup = client.v1.setup_intents.create(
        params={"customer": payer.gateway_customer_id, "payment_method_types": ["us_bank_account"]}
    )
    client.v1.setup_intents.confirm(
        setup.id,
        params={
            "payment_method_data": {
                "type": "us_bank_account",
                "us_bank_account": {"routing_number": ROUTING, "account_number": account},
                "billing_details": {"name": "Acme Inc", "email": "billing@acme.example"},
            }
        },
    )
    method = client.v1.setup_intents.retrieve(setup.id).payment_method
    return payment_method_default_set(actor=None, organization=organization, payment_method_id=method)


def debits(proxy) -> int:
    """PaymentIntent confirms the gateway received (the setup's confirm is not a debit)."""
    return sum(n for key, n in proxy.requests.items() if key.startswith("POST /v1/payment_intents/"))


def registered(proxy, url: str) -> None:
    form = urlencode({"url": url, "secret": WEBHOOK_SECRET}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{proxy.url}/_config/webhooks/ach-tests", data=form, method="POST"))


def delivered(hooks, intent_id: str, event_type: str):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mine = [
            r
            for r in hooks.requests
            if json.loads(r.body)["type"] == event_type and json.loads(r.body)["data"]["object"]["id"] == intent_id
        ]
        if mine:
            return mine
        time.sleep(0.05)
    return []


def test_ach_method_is_saved_with_last4_and_bank_name_only(us_world, connected):
    payer = ach_payer(us_world[0], connected, ACH_OK)
    assert (payer.default_method_type, payer.default_method_label) == ("us_bank_account", "ACH •••• 6789")
    method = sdk(connected).v1.payment_methods.retrieve(payer.default_payment_method_id)
    assert method.us_bank_account.last4 == "6789" and method.us_bank_account.bank_name == "STRIPE TEST BANK"
    assert ACH_OK not in json.dumps(method.to_dict())


def test_ach_debit_processing_then_succeeded_by_webhook_pays_the_invoice_once(us_world, connected, client_a):
    ach_payer(us_world[0], connected, ACH_OK)
    invoice = april_open(us_world)
    assert (invoice.currency, invoice.amount_due) == ("USD", D("30.00"))
    with receiver() as hooks:
        registered(connected, hooks.url)
        collect_all()
        [payment] = Payment.objects.all()
        assert (payment.status, payment.method_type, payment.failure_code) == ("processing", "us_bank_account", "")
        assert Invoice.objects.get(pk=invoice.pk).status == "open"
        # days later at Stripe; here when the test says so
        connected.ach_settle(payment.gateway_payment_id)
        [delivery] = delivered(hooks, payment.gateway_payment_id, "payment_intent.succeeded")
    response = client_a.post(
        URL, delivery.body, content_type="application/json", HTTP_STRIPE_SIGNATURE=delivery.headers["stripe-signature"]
    )
    assert response.json() == {"received": True, "outcome": "received"}
    assert gateway_events_apply() == 1  # the worker's run applies what the request stored
    assert GatewayEventRecord.objects.get().outcome == "applied"
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.status == "succeeded" and payment.settled_invoice
    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == ("paid", D("0"), D("30.00"))
    assert debits(connected) == 1
    # the same event again, and a collection message redelivered: nothing more
    again = client_a.post(
        URL, delivery.body, content_type="application/json", HTTP_STRIPE_SIGNATURE=delivery.headers["stripe-signature"]
    )
    assert again.json()["outcome"] == "duplicate"
    assert gateway_events_apply() == 0
    assert invoice_collect(invoice_id=invoice.pk) is None
    assert Payment.objects.count() == 1 and debits(connected) == 1
    assert GatewayEventRecord.objects.count() == 1
    assert Invoice.objects.get(pk=invoice.pk).amount_paid == D("30.00")


@pytest.mark.parametrize(
    ("account", "failure", "message"),
    [
        (
            ACH_INSUFFICIENT,
            "insufficient_funds",
            "The customer's account has insufficient funds to cover this payment.",
        ),
        (ACH_CLOSED, "hard_decline", "The customer's bank account has been closed."),
    ],
)
def test_ach_debit_returned_days_later_fails_normalized_and_leaves_the_invoice_open(
    us_world, connected, client_a, account, failure, message
):
    ach_payer(us_world[0], connected, account)
    invoice = april_open(us_world)
    with receiver() as hooks:
        registered(connected, hooks.url)
        collect_all()
        [payment] = Payment.objects.all()
        assert payment.status == "processing"
        connected.ach_settle(payment.gateway_payment_id)
        [delivery] = delivered(hooks, payment.gateway_payment_id, "payment_intent.payment_failed")
    response = client_a.post(
        URL, delivery.body, content_type="application/json", HTTP_STRIPE_SIGNATURE=delivery.headers["stripe-signature"]
    )
    assert response.json() == {"received": True, "outcome": "received"}
    assert gateway_events_apply() == 1  # the worker's run applies what the request stored
    assert GatewayEventRecord.objects.get().outcome == "applied"
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.failure_message) == ("failed", failure, message)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == ("open", D("30.00"), D("0"))
    assert not payment.settled_invoice and Payment.objects.count() == 1 and debits(connected) == 1


def test_ach_refuses_a_currency_other_than_dollars(world, connected):
    payer = payer_ensure(organization=world[0])
    client = sdk(connected)
    setup = client.v1.setup_intents.create(
        params={"customer": payer.gateway_customer_id, "payment_method_types": ["us_bank_account"]}
    )
    client.v1.setup_intents.confirm(
        setup.id,
        params={
            "payment_method_data": {
                "type": "us_bank_account",
                "us_bank_account": {"routing_number": ROUTING, "account_number": ACH_OK},
            }
        },
    )
    payment_method_default_set(
        actor=None, organization=world[0], payment_method_id=client.v1.setup_intents.retrieve(setup.id).payment_method
    )
    from tests.invoicing.test_invoice_api import april_open as april_open_eur

    invoice = april_open_eur(world)
    collect_all()
    [payment] = Payment.objects.all()
    assert payment.status != "succeeded" and payment.gateway_payment_id is None
    assert Invoice.objects.get(pk=invoice.pk).status == "open"


def test_a_bad_routing_number_is_refused_and_nothing_is_saved(us_world, connected):
    payer = payer_ensure(organization=us_world[0])
    client = sdk(connected)
    setup = client.v1.setup_intents.create(
        params={"customer": payer.gateway_customer_id, "payment_method_types": ["us_bank_account"]}
    )
    import stripe

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.setup_intents.confirm(
            setup.id,
            params={
                "payment_method_data": {
                    "type": "us_bank_account",
                    "us_bank_account": {"routing_number": "110000001", "account_number": ACH_OK},
                }
            },
        )
    assert raised.value.code == "routing_number_invalid"
    assert client.v1.setup_intents.retrieve(setup.id).status == "requires_payment_method"
    listed = client.v1.payment_methods.list(params={"customer": payer.gateway_customer_id, "type": "us_bank_account"})
    assert listed.data == []
