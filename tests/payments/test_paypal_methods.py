"""A PayPal wallet beside Stripe's methods, against the local PayPal fake (and localstripe for the
card next to it): saved through PayPal's approval page (a vault setup token, approved on the
fake's page, turned into a payment token on the return), listed, made the default, charged by
collection through Orders v2 with the vaulted token, and removed (deleted at PayPal). A cancelled
approval, an unapproved token and another organization's token save nothing."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from auditlog.models import LogEntry

from core.errors import DomainError
from payments.models import GatewaySettings, Payment, PaymentCustomer
from payments.services.methods import (
    payment_method_default_set,
    payment_method_remove,
    payment_methods_list,
    paypal_approval_cancel,
    paypal_approval_finish,
    paypal_approval_start,
)
from tests.factories import OrganizationFactory
from tests.invoicing.test_invoice_api import april_open
from tests.payments import test_paypal_collection
from tests.payments.conftest import CARD_OK, collect_all, payer_with
from tests.support.paypal_fake import PayPalFake

fake = test_paypal_collection.fake  # the fixture: the fake, and the tenant's PayPal app pointing at it

D = Decimal
RETURN = "https://demo.example/organizations/acme/payment-methods/paypal/return/"
CANCEL = "https://demo.example/organizations/acme/payment-methods/paypal/cancel/"


@pytest.fixture
def fake_beside_stripe(connected, settings):
    """Stripe connected (localstripe) and the PayPal app too, on the same settings row."""
    with PayPalFake() as server:
        settings.PAYPAL_API_BASE = server.base_url
        row = GatewaySettings.objects.get()
        row.paypal_client_id, row.paypal_webhook_id = server.client_id, server.webhook_id
        row.paypal_client_secret_set(server.client_secret)
        row.save()
        yield server


def started(organization) -> str:
    """Start an approval; the setup token's id, as the approval page's URL names it."""
    url = paypal_approval_start(organization=organization, return_url=RETURN, cancel_url=CANCEL)
    return parse_qs(urlsplit(url).query)["approval_session_id"][0]


def saved(organization, fake, *, email: str = "jane@example.com") -> str:
    """The payer approves on PayPal's page and comes back: the payment token's id."""
    token = started(organization)
    fake.approve_setup_token(token, email=email)
    return paypal_approval_finish(actor=None, organization=organization, setup_token_id=token).id


def wallet_of(organization) -> tuple[str, str, str, str]:
    payer = PaymentCustomer.objects.get(organization=organization)
    return payer.paypal_customer_id, payer.paypal_token_id, payer.paypal_label, payer.paypal_setup_token_id


def test_approval_starts_a_setup_token_returning_to_the_portal(world, fake):
    url = paypal_approval_start(organization=world[0], return_url=RETURN, cancel_url=CANCEL)
    token = parse_qs(urlsplit(url).query)["approval_session_id"][0]
    assert url == f"{fake.base_url}/agreements/approve?approval_session_id={token}"
    setup = fake.setup_tokens[token]
    assert setup["status"] == "PAYER_ACTION_REQUIRED"
    assert (setup["_context"]["return_url"], setup["_context"]["cancel_url"]) == (RETURN, CANCEL)
    assert setup["customer"]["merchant_customer_id"] == "acme"
    # Only the approval under way is kept: no wallet yet.
    assert wallet_of(world[0]) == ("", "", "", token)


def test_saved_listed_made_default_and_charged_once_through_paypal(world, fake):
    organization = world[0]
    token = saved(organization, fake)
    customer = fake.payment_tokens[token]["customer"]["id"]
    assert wallet_of(organization)[:3] == (customer, token, "PayPal j•••@example.com")
    assert PaymentCustomer.objects.get(organization=organization).paypal_setup_finished
    payer, methods = payment_methods_list(organization=organization)
    assert [(m.id, str(m.type), m.label) for m in methods] == [(token, "paypal", "PayPal j•••@example.com")]
    assert payer.default_payment_method_id == ""  # saving alone does not change the default

    payer = payment_method_default_set(actor=None, organization=organization, payment_method_id=token)
    assert (payer.default_payment_method_id, payer.default_method_type, payer.default_method_label) == (
        token,
        "paypal",
        "PayPal j•••@example.com",
    )
    invoice = april_open(world)
    collect_all()
    collect_all()  # a second run of the same messages charges nothing more
    [payment] = Payment.objects.all()
    assert (payment.gateway, payment.payment_method_id, payment.method_type, payment.status) == (
        "paypal",
        token,
        "paypal",
        "succeeded",
    )
    assert fake.capture_count() == 1
    [order] = fake.orders.values()
    assert order["purchase_units"][0]["amount"] == {"currency_code": "EUR", "value": "35.70"}
    assert payment.gateway_payment_id in fake.captures and payment.settled_invoice
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == ("paid", D("35.70"), D("0"))


def test_the_card_and_the_wallet_listed_together_and_the_default_charged_at_its_gateway(
    world, connected, fake_beside_stripe
):
    organization, fake = world[0], fake_beside_stripe
    card = payer_with(organization, connected, card=CARD_OK).default_payment_method_id
    token = saved(organization, fake)
    _, methods = payment_methods_list(organization=organization)
    assert [(str(m.type), m.id) for m in methods] == [("card", card), ("paypal", token)]
    assert PaymentCustomer.objects.get(organization=organization).default_payment_method_id == card

    payment_method_default_set(actor=None, organization=organization, payment_method_id=token)
    april_open(world)
    collect_all()
    [payment] = Payment.objects.all()
    assert (payment.gateway, payment.payment_method_id, payment.status) == ("paypal", token, "succeeded")
    assert fake.capture_count() == 1

    # Back to the card: Stripe's method is the default again; the wallet stays listed.
    payer = payment_method_default_set(actor=None, organization=organization, payment_method_id=card)
    assert (payer.default_gateway, payer.default_method_type) == ("stripe", "card")
    assert [m.id for m in payment_methods_list(organization=organization)[1]] == [card, token]


def test_remove_deletes_the_token_at_paypal_and_clears_the_default(world, fake):
    organization = world[0]
    token = saved(organization, fake)
    payment_method_default_set(actor=None, organization=organization, payment_method_id=token)
    payment_method_remove(actor=None, organization=organization, payment_method_id=token)
    assert fake.payment_tokens[token]["_deleted"] is True
    payer = PaymentCustomer.objects.get(organization=organization)
    assert (payer.paypal_token_id, payer.paypal_label, payer.default_payment_method_id) == ("", "", "")
    assert payment_methods_list(organization=organization)[1] == []
    events = list(
        LogEntry.objects.get_for_object(payer)
        .filter(changes__has_key="event")
        .order_by("id")
        .values_list("changes__event__1", flat=True)
    )
    assert events == ["payment_method.added", "payment_method.default_set", "payment_method.removed"]
    april_open(world)
    collect_all()
    assert not Payment.objects.exists() and fake.capture_count() == 0


def test_a_reloaded_return_page_answers_saved_and_writes_nothing(world, fake):
    organization = world[0]
    setup = started(organization)
    fake.approve_setup_token(setup)
    first = paypal_approval_finish(actor=None, organization=organization, setup_token_id=setup)
    saved_state = wallet_of(organization)
    tokens = dict(fake.payment_tokens)
    again = paypal_approval_finish(actor=None, organization=organization, setup_token_id=setup)
    assert again == first
    assert wallet_of(organization) == saved_state and fake.payment_tokens == tokens
    payer = PaymentCustomer.objects.get(organization=organization)
    events = list(
        LogEntry.objects.get_for_object(payer)
        .filter(changes__has_key="event")
        .values_list("changes__event__1", flat=True)
    )
    assert events == ["payment_method.added"]
    # Once the wallet is removed, its old return page does not bring it back.
    payment_method_remove(actor=None, organization=organization, payment_method_id=first.id)
    with pytest.raises(DomainError) as raised:
        paypal_approval_finish(actor=None, organization=organization, setup_token_id=setup)
    assert raised.value.code == "setup_incomplete"
    assert wallet_of(organization) == (saved_state[0], "", "", "")


def test_cancel_at_paypal_saves_nothing(world, fake):
    organization = world[0]
    token = started(organization)
    paypal_approval_cancel(organization=organization)
    fake.approve_setup_token(token)  # even approved later, the cancelled approval is not saved
    with pytest.raises(DomainError) as raised:
        paypal_approval_finish(actor=None, organization=organization, setup_token_id=token)
    assert raised.value.code == "setup_incomplete"
    assert wallet_of(organization) == ("", "", "", "")
    assert fake.payment_tokens == {}


def test_a_token_the_payer_did_not_approve_saves_nothing(world, fake):
    organization = world[0]
    token = started(organization)
    with pytest.raises(DomainError) as raised:
        paypal_approval_finish(actor=None, organization=organization, setup_token_id=token)
    assert raised.value.code == "setup_incomplete"
    assert wallet_of(organization) == ("", "", "", token)  # the payer may still approve it
    assert fake.payment_tokens == {}


def test_another_organizations_token_cannot_be_used(world, fake):
    acme = world[0]
    beta = OrganizationFactory(external_id="beta", currency="EUR", country="DE", name="Beta GmbH")
    theirs = started(acme)
    fake.approve_setup_token(theirs)
    started(beta)  # beta has an approval of its own under way
    with pytest.raises(DomainError) as raised:
        paypal_approval_finish(actor=None, organization=beta, setup_token_id=theirs)
    assert raised.value.code == "setup_incomplete"
    assert fake.payment_tokens == {}  # refused before asking PayPal for a payment token
    assert wallet_of(beta)[:3] == ("", "", "")

    token = paypal_approval_finish(actor=None, organization=acme, setup_token_id=theirs).id
    for action in (payment_method_default_set, payment_method_remove):
        with pytest.raises(DomainError) as raised:
            action(actor=None, organization=beta, payment_method_id=token)
        assert raised.value.code == "unknown_payment_method"
    assert fake.payment_tokens[token].get("_deleted") is None
    assert PaymentCustomer.objects.get(organization=beta).default_payment_method_id == ""


def test_a_second_wallet_replaces_the_first_and_keeps_the_default(world, fake):
    organization = world[0]
    first = saved(organization, fake)
    payment_method_default_set(actor=None, organization=organization, payment_method_id=first)
    second = saved(organization, fake, email="max@example.org")
    assert fake.payment_tokens[first]["_deleted"] is True
    payer = PaymentCustomer.objects.get(organization=organization)
    assert (payer.paypal_token_id, payer.default_payment_method_id, payer.default_method_label) == (
        second,
        second,
        "PayPal m•••@example.org",
    )
    # The same vault customer holds both (the second setup named it).
    assert fake.payment_tokens[second]["customer"]["id"] == fake.payment_tokens[first]["customer"]["id"]
