"""The portal's payment-methods page and pay-now, against localstripe through the tests' proxy
(tests/payments/conftest.py). The tests play Stripe.js's part where a browser would type a card
(creating and attaching methods at the fake): test card numbers never pass through our views.
tests/portal/test_browser_payments.py does the same through the real element in Chromium."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.test import Client

from billing.models import Membership
from invoicing.models import Invoice
from payments.models import Payment, PaymentCustomer
from portal.models import PortalSettings
from tests.factories import UserFactory
from tests.payments.conftest import (
    CARD_3DS,
    CARD_DECLINED,
    CARD_OK,
    IBAN_FAILS,
    IBAN_OK,
    PUBLISHABLE_KEY,
    method_create,
    payer_with,
    sdk,
)
from tests.portal.scenario import START, seed

pytestmark = pytest.mark.django_db
D = Decimal
METHODS = "/organizations/acme/payment-methods/"


@pytest.fixture
def acme(in_a, client_a, connected):
    """Acme with its open April invoice (10.00 EUR), signed in as its owner."""
    seeded = seed(start=START, now=START + timedelta(hours=6))
    client_a.force_login(seeded["user"])
    return seeded


def viewer_client(tenant_a, organization) -> Client:
    viewer = UserFactory(email="viewer@acme.example")
    Membership.objects.create(user=viewer, organization=organization, role="viewer")
    client = Client(HTTP_HOST=tenant_a.get_primary_domain().domain)
    client.force_login(viewer)
    return client


def pay_url(invoice) -> str:
    return f"/organizations/acme/invoices/{invoice.pk}/pay/"


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def attach(proxy, organization, card: str) -> str:
    """What confirmCardSetup does in the browser: a method made and attached at the gateway."""
    from payments.services.methods import payer_ensure

    payer = payer_ensure(organization=organization)
    method = method_create(proxy, card=card)
    sdk(proxy).v1.payment_methods.attach(method, params={"customer": payer.gateway_customer_id})
    return method


def element_saves(client, proxy, card: str) -> str:
    """What the page's script and Stripe.js's confirmCardSetup do: a SetupIntent from our view,
    confirmed at the gateway with the typed card. Returns the setup's id (all the page posts)."""
    secret = client.post(METHODS + "setup/").json()["client_secret"]
    setup_id = secret.split("_secret_")[0]
    sdk(proxy).v1.setup_intents.confirm(setup_id, params={"payment_method": method_create(proxy, card=card)})
    return setup_id


# --- payment methods ----------------------------------------------------------------------------


def test_methods_page_lists_brand_last4_expiry_and_the_default(acme, client_a, connected):
    payer_with(acme["organization"], connected, card=CARD_OK)
    second = attach(connected, acme["organization"], CARD_DECLINED)
    page = client_a.get(METHODS).content.decode()
    assert "<strong>visa •••• 4242</strong>" in page and "expires 12/2034" in page
    assert "<strong>visa •••• 0341</strong>" in page
    assert page.count('<span class="status status-paid">Default</span>') == 1
    assert f'name="method" value="{second}"><button type="submit" class="secondary outline" ' in page
    assert 'aria-label="Make default: visa •••• 0341">Make default</button>' in page
    assert CARD_OK not in page and "424242" not in page
    # the gateway's element from configuration, with the tenant's publishable key
    assert '<script src="http://127.0.0.1:' in page or "js.stripe.com/v3/" in page
    assert f'data-publishable-key="{PUBLISHABLE_KEY}"' in page
    # SAQ-A: nothing of ours is a card field; the only forms post a method id
    for marker in ('name="number"', 'name="cardnumber"', 'name="cvc"', 'autocomplete="cc-'):
        assert marker not in page


def test_stripe_js_comes_from_configuration(acme, client_a, settings):
    settings.STRIPE_JS_URL = "https://js.example.test/v3/"
    page = client_a.get(METHODS).content.decode()
    assert '<script src="https://js.example.test/v3/"></script>' in page


def test_setup_answers_a_client_secret_for_the_element(acme, client_a, connected):
    response = client_a.post(METHODS + "setup/")
    assert response.status_code == 200
    assert response.json()["client_secret"].startswith("seti_")
    assert PaymentCustomer.objects.get(organization=acme["organization"]).gateway_customer_id.startswith("cus_")


def test_a_viewer_sees_methods_but_cannot_change_or_pay(acme, tenant_a, connected):
    payer_with(acme["organization"], connected, card=CARD_OK)
    viewer = viewer_client(tenant_a, acme["organization"])
    page = viewer.get(METHODS).content.decode()
    assert "visa •••• 4242" in page and "Remove" not in page and "Add a card" not in page
    assert "Pay now" not in viewer.get("/organizations/acme/billing/").content.decode()
    before = dict(connected.requests)
    assert viewer.post(METHODS + "setup/").status_code == 403
    assert viewer.post(METHODS + "remove/", {"method": "pm_x"}).status_code == 403
    assert viewer.post(pay_url(acme["invoice"]), {"method": "default"}).status_code == 403
    assert viewer.get(pay_url(acme["invoice"])).status_code == 403
    assert connected.requests == before and not Payment.objects.exists()


def test_added_card_becomes_default_only_when_there_is_none(acme, client_a, connected):
    response = client_a.post(METHODS + "added/", {"setup": element_saves(client_a, connected, CARD_OK)}, follow=True)
    assert messages_of(response) == ["Card added: visa •••• 4242, now your default payment method."]
    payer = PaymentCustomer.objects.get(organization=acme["organization"])
    first = payer.default_payment_method_id
    assert first.startswith("pm_") and payer.default_method_label == "visa •••• 4242"
    setup = element_saves(client_a, connected, CARD_DECLINED)
    response = client_a.post(METHODS + "added/", {"setup": setup}, follow=True)
    assert messages_of(response) == ["Card added: visa •••• 0341."]
    assert PaymentCustomer.objects.get(pk=payer.pk).default_payment_method_id == first
    page = response.content.decode()
    assert "<strong>visa •••• 4242</strong>" in page and "<strong>visa •••• 0341</strong>" in page
    # set default, audited with the actor
    second = next(m for m in page.split('name="method" value="')[1:] if not m.startswith(first)).split('"')[0]
    response = client_a.post(METHODS + "default/", {"method": second}, follow=True)
    assert messages_of(response) == ["visa •••• 0341 is now your default payment method."]
    assert PaymentCustomer.objects.get(pk=payer.pk).default_payment_method_id == second
    entry = LogEntry.objects.filter(object_pk=str(payer.pk)).order_by("-pk").first()
    assert entry.actor == acme["user"]


def test_a_setup_that_is_not_the_organizations_or_not_finished_adds_nothing(acme, client_a, connected):
    payer_with(acme["organization"], connected, card=CARD_OK)
    unfinished = client_a.post(METHODS + "setup/").json()["client_secret"].split("_secret_")[0]
    stranger_customer = sdk(connected).v1.customers.create(params={"name": "Other"}).id
    stranger = sdk(connected).v1.setup_intents.create(params={"customer": stranger_customer}).id
    sdk(connected).v1.setup_intents.confirm(stranger, params={"payment_method": method_create(connected, card=CARD_OK)})
    for setup in (unfinished, stranger, "seti_nope", ""):
        response = client_a.post(METHODS + "added/", {"setup": setup}, follow=True)
        assert messages_of(response) == ["The card was not saved."], setup
    assert PaymentCustomer.objects.get(organization=acme["organization"]).default_method_label == "visa •••• 4242"
    assert response.content.decode().count("<strong>visa") == 1


def test_remove_detaches_at_the_gateway_and_clears_the_default(acme, client_a, connected):
    payer = payer_with(acme["organization"], connected, card=CARD_OK)
    method = payer.default_payment_method_id
    response = client_a.post(METHODS + "remove/", {"method": method}, follow=True)
    assert messages_of(response) == ["Payment method removed."]
    payer.refresh_from_db()
    assert (payer.default_payment_method_id, payer.default_method_label) == ("", "")
    assert connected.requests[f"POST /v1/payment_methods/{method}/detach"] == 1
    assert "No saved payment methods yet." in response.content.decode()


def test_another_customers_method_cannot_be_removed_or_made_default(acme, client_a, connected):
    payer_with(acme["organization"], connected, card=CARD_OK)
    stranger = method_create(connected, card=CARD_OK)  # exists at the gateway, not Acme's
    for action in ("remove/", "default/"):
        response = client_a.post(METHODS + action, {"method": stranger}, follow=True)
        assert messages_of(response) == ["No such payment method for this organization."]
    assert not any("detach" in key for key in connected.requests)
    assert PaymentCustomer.objects.get(organization=acme["organization"]).default_method_label == "visa •••• 4242"


def test_collection_switch_only_when_the_seller_allows_it(acme, client_a):
    assert 'name="collection_method"' not in client_a.get(METHODS).content.decode()
    assert client_a.post(METHODS + "collection/", {"collection_method": "manual"}).status_code == 403
    assert not PaymentCustomer.objects.filter(collection_method="manual").exists()
    PortalSettings.objects.create(customers_choose_collection=True)
    page = client_a.get(METHODS).content.decode()
    assert '<input type="radio" name="collection_method" value="automatic" checked>' in page
    response = client_a.post(METHODS + "collection/", {"collection_method": "manual"}, follow=True)
    assert messages_of(response) == ["Collection preference saved."]
    assert PaymentCustomer.objects.get(organization=acme["organization"]).collection_method == "manual"
    response = client_a.post(METHODS + "collection/", {"collection_method": "weekly"}, follow=True)
    assert messages_of(response) == ["Choose automatic or manual collection."]
    assert PaymentCustomer.objects.get(organization=acme["organization"]).collection_method == "manual"


# --- pay now ------------------------------------------------------------------------------------


def test_billing_history_links_pay_now_for_the_open_invoice(acme, client_a):
    page = client_a.get("/organizations/acme/billing/").content.decode()
    invoice = acme["invoice"]
    assert (
        f'<a href="{pay_url(invoice)}" role="button" class="pay-now" aria-label="Pay now: invoice {invoice.number}">'
        in page
    )


def test_pay_now_charges_the_default_card_and_the_invoice_is_paid(acme, client_a, connected):
    payer_with(acme["organization"], connected, card=CARD_OK)
    invoice = acme["invoice"]
    page = client_a.get(pay_url(invoice)).content.decode()
    assert "Pay €10.00 with visa •••• 4242" in page
    response = client_a.post(pay_url(invoice), {"method": "default"}, follow=True)
    assert response.redirect_chain == [("/organizations/acme/billing/", 302)]
    assert messages_of(response) == [f"Thank you: invoice {invoice.number} is paid."]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == ("paid", D("0"), D("10.00"))
    [payment] = Payment.objects.all()
    assert (payment.status, payment.amount, payment.number) == ("succeeded", D("10.00"), 1)
    assert LogEntry.objects.filter(object_pk=str(payment.pk), actor=acme["user"]).exists()
    assert "Pay now" not in response.content.decode()
    # paying again: nothing to pay, nothing charged
    confirms = connected.confirms()
    response = client_a.post(pay_url(invoice), {"method": "default"}, follow=True)
    assert messages_of(response) == [f"{invoice} is paid, not awaiting payment."]
    assert connected.confirms() == confirms and Payment.objects.count() == 1


def test_pay_now_decline_shows_a_human_message_and_leaves_the_invoice_open(acme, client_a, connected):
    payer_with(acme["organization"], connected, card=CARD_DECLINED)
    invoice = acme["invoice"]
    response = client_a.post(pay_url(invoice), {"method": "default"}, follow=True)
    assert response.redirect_chain == [(pay_url(invoice), 302)]
    assert messages_of(response) == ["Your card was declined. Please try again later or use another card."]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == ("open", D("10.00"))
    [payment] = Payment.objects.all()
    assert (payment.status, payment.failure_code) == ("failed", "soft_decline")
    # a new card through the element then pays it (payment 2, with that card; not made the default)
    response = client_a.post(pay_url(invoice), {"setup": element_saves(client_a, connected, CARD_OK)}, follow=True)
    assert messages_of(response) == [f"Thank you: invoice {invoice.number} is paid."]
    rows = list(Payment.objects.order_by("number").values_list("number", "status", "payment_method_id"))
    assert rows[0] == (1, "failed", payment.payment_method_id)
    assert rows[1][:2] == (2, "succeeded") and rows[1][2] not in ("", payment.payment_method_id)
    payer = PaymentCustomer.objects.get(organization=acme["organization"])
    assert payer.default_payment_method_id == payment.payment_method_id


def test_pay_now_with_a_method_that_is_not_the_organizations_charges_nothing(acme, client_a, connected):
    payer_with(acme["organization"], connected, card=CARD_OK)
    stranger = method_create(connected, card=CARD_OK)
    response = client_a.post(pay_url(acme["invoice"]), {"method": stranger}, follow=True)
    assert messages_of(response) == ["No such payment method for this organization."]
    assert not Payment.objects.exists() and connected.confirms() == 0


def test_pay_now_without_a_method_says_so(acme, client_a, connected):
    response = client_a.post(pay_url(acme["invoice"]), {"method": "default"}, follow=True)
    assert messages_of(response) == ["The organization has no default payment method."]
    assert not Payment.objects.exists()


def test_pay_now_requires_action_then_the_gateways_confirm_flow_pays_it(acme, client_a, connected, localstripe_url):
    payer_with(acme["organization"], connected, card=CARD_3DS)
    invoice = acme["invoice"]
    response = client_a.post(pay_url(invoice), {"method": "default"})
    [payment] = Payment.objects.all()
    assert payment.status == "requires_action"
    assert response["Location"] == f"{pay_url(invoice)}?payment={payment.pk}"
    page = client_a.get(response["Location"]).content.decode()
    secret = page.split('data-action-secret="', 1)[1].split('"', 1)[0]
    assert secret.startswith(f"{payment.gateway_payment_id}_secret_")
    assert "Confirm with your bank" in page
    # what Stripe.js's confirmCardPayment does after the customer passed the challenge
    request = urllib.request.Request(
        f"{localstripe_url}/v1/payment_intents/{payment.gateway_payment_id}/_authenticate?success=true",
        data=json.dumps({"key": PUBLISHABLE_KEY, "client_secret": secret}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).read()
    response = client_a.post(f"/organizations/acme/invoices/{invoice.pk}/payments/{payment.pk}/refresh/", follow=True)
    assert messages_of(response) == [f"Thank you: invoice {invoice.number} is paid."]
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


def test_pay_now_is_csrf_protected(acme, tenant_a, connected):
    payer_with(acme["organization"], connected, card=CARD_OK)
    client = Client(HTTP_HOST=tenant_a.get_primary_domain().domain, enforce_csrf_checks=True)
    client.force_login(acme["user"])
    assert client.post(pay_url(acme["invoice"]), {"method": "default"}).status_code == 403
    assert client.post(METHODS + "setup/").status_code == 403
    assert not Payment.objects.exists() and connected.confirms() == 0


def test_pay_now_for_a_draft_or_another_organizations_invoice_is_404(acme, client_a, connected):
    from tests.factories import OrganizationFactory

    other = OrganizationFactory(external_id="globex", currency="EUR")
    invoice = Invoice.objects.get(pk=acme["invoice"].pk)
    Invoice.objects.filter(pk=invoice.pk).update(organization=other)
    assert client_a.get(pay_url(invoice)).status_code == 404
    assert client_a.post(pay_url(invoice), {"method": "default"}).status_code == 404
    assert client_a.post("/organizations/globex/payment-methods/setup/").status_code == 404
    assert not Payment.objects.exists()


def test_a_sepa_mandate_is_saved_through_the_gateway_and_becomes_the_default(acme, client_a, connected):
    page = client_a.get(METHODS).content.decode()
    assert "Add a SEPA Direct Debit mandate" in page and "data-iban-element" in page
    assert "you authorise (A) Seller GmbH and Stripe, our payment service provider" in page
    assert 'name="iban"' not in page  # the IBAN is typed into the gateway's element only
    response = client_a.post(METHODS + "setup/", {"type": "sepa_debit"})
    secret = response.json()["client_secret"]
    setup_id = secret.split("_secret_")[0]
    # what confirmSepaDebitSetup does from the gateway's element
    sdk(connected).v1.setup_intents.confirm(setup_id, params={"payment_method": method_create(connected, iban=IBAN_OK)})
    response = client_a.post(METHODS + "added/", {"setup": setup_id}, follow=True)
    assert messages_of(response) == [
        "SEPA Direct Debit mandate saved: SEPA •••• 3000, now your default payment method."
    ]
    payer = PaymentCustomer.objects.get(organization=acme["organization"])
    assert (payer.default_method_type, payer.default_method_label) == ("sepa_debit", "SEPA •••• 3000")


def test_setup_refuses_a_type_the_page_does_not_offer(acme, client_a, connected):
    for kind in ("paypal", "ideal", ""):
        response = client_a.post(METHODS + "setup/", {"type": kind})
        assert response.status_code == 400, kind
        assert response.json()["error"]["code"] == "invalid_method_type"
    assert not PaymentCustomer.objects.filter(organization=acme["organization"]).exists()
    assert connected.requests["POST /v1/setup_intents"] == 0


def test_pay_now_with_a_sepa_debit_says_processing_and_offers_no_second_payment(acme, client_a, connected):
    payer_with(acme["organization"], connected, iban=IBAN_FAILS)  # stays processing (no webhook here)
    invoice = acme["invoice"]
    response = client_a.post(pay_url(invoice), {"method": "default"}, follow=True)
    assert response.redirect_chain == [("/organizations/acme/billing/", 302)]
    assert messages_of(response) == [
        f"Your payment of invoice {invoice.number} is processing: a bank debit takes a few business days to "
        "confirm. The invoice stays open until then; we will email you."
    ]
    page = client_a.get(pay_url(invoice)).content.decode()
    assert "A SEPA Direct Debit of €10.00 for this invoice is processing." in page
    assert "data-pay-default" not in page and "data-card-form" not in page
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("open", D("0"))
    [payment] = Payment.objects.all()
    assert (payment.status, payment.method_type) == ("processing", "sepa_debit")


def test_a_us_bank_account_is_saved_through_the_gateway_with_last4_only(acme, client_a, connected):
    page = client_a.get(METHODS).content.decode()
    assert "Add a US bank account (ACH debit)" in page
    assert "you authorize Seller GmbH to debit it" in page
    assert 'name="account_number"' not in page and 'name="routing_number"' not in page
    secret = client_a.post(METHODS + "setup/", {"type": "us_bank_account"}).json()["client_secret"]
    setup_id = secret.split("_secret_")[0]
    # what collectBankAccountForSetup and confirmUsBankAccountSetup do from the gateway's dialog
    sdk(connected).v1.setup_intents.confirm(
        setup_id,
        params={
            "payment_method_data": {
                "type": "us_bank_account",
                "us_bank_account": {"routing_number": "110000000", "account_number": "000123456789"},
            }
        },
    )
    response = client_a.post(METHODS + "added/", {"setup": setup_id}, follow=True)
    assert messages_of(response) == ["Bank account added: ACH •••• 6789, now your default payment method."]
    payer = PaymentCustomer.objects.get(organization=acme["organization"])
    assert (payer.default_method_type, payer.default_method_label) == ("us_bank_account", "ACH •••• 6789")
    assert "000123456789" not in response.content.decode()
