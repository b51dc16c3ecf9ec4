"""PayPal approval on the payment-methods page in Chromium: "Continue to PayPal" sends the browser to
the local PayPal fake's approval page (the one `config.embedded exec` runs, PAYPAL_API_BASE), where
the payer first cancels (back on the page with a message, nothing saved), then agrees; PayPal's
return lands on the page with the wallet listed beside the card, which is made the default. axe-core
reports 0 serious or critical violations on the page at each step.

Set PORTAL_SHOTS_DIR to keep screenshots."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import playwright.sync_api as playwright_api
import pytest
from django.db import connection
from django_tenants.utils import schema_context

from tests.portal import test_browser_payments
from tests.portal.test_browser_payments import CARDS, axe_serious, login, type_card
from tests.portal.test_browser_portal import CHROMIUM

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("django_db_setup")]
shop = test_browser_payments.shop  # the fixture: Acme, its owner, Stripe connected, the live server


@pytest.fixture
def paypal_shop(shop, committed_tenant, django_db_blocker):
    """The shop with its PayPal app connected to the embedded fake (its default credentials)."""
    if not os.environ.get("PAYPAL_API_BASE", "").startswith("http://127.0.0.1"):
        pytest.skip("needs the PayPal fake that `config.embedded exec` starts (PAYPAL_API_BASE)")
    from payments.models import GatewaySettings, PaymentCustomer

    tenant, _ = committed_tenant
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        row = GatewaySettings.objects.get()
        row.paypal_client_id, row.paypal_webhook_id = "fake-client-id", "WHFAKE0000000001"
        row.paypal_client_secret_set("fake-client-secret")
        row.save()
    connection.set_schema_to_public()

    def read() -> PaymentCustomer:
        with django_db_blocker.unblock(), schema_context(tenant.schema_name):
            found = PaymentCustomer.objects.get(organization__external_id="acme")
        connection.close()
        return found

    def payer() -> PaymentCustomer:
        # Playwright's sync API runs an event loop in this thread: the ORM reads from another one.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(read).result()

    return {**shop, "payer": payer}


def test_add_paypal_cancel_then_approve_and_make_it_default_in_chromium(paypal_shop, tmp_path):
    origin = paypal_shop["origin"]
    paypal = os.environ["PAYPAL_API_BASE"]
    methods_url = f"{origin}/organizations/acme/payment-methods/"
    shots = Path(os.environ.get("PORTAL_SHOTS_DIR") or tmp_path)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            login(page, origin)
            page.click("text=Payment methods")

            # a card first: the wallet is added beside it
            page.wait_for_function("() => document.querySelector('[data-card-element] input')")
            type_card(page, CARDS["ok"])
            page.click("[data-card-submit]")
            page.wait_for_selector("[data-methods]")
            assert axe_serious(page) == []

            # cancel on PayPal's page: back here with a message, nothing saved
            page.click("[data-paypal-add]")
            page.wait_for_url(f"{paypal}/agreements/approve?**")
            page.get_by_role("button", name="Cancel and return").click()
            page.wait_for_url(methods_url)
            assert page.locator("p.message").inner_text() == "You cancelled at PayPal: no PayPal account was added."
            assert page.locator("[data-methods] li").count() == 1
            payer = paypal_shop["payer"]()
            assert (payer.paypal_token_id, payer.paypal_setup_token_id) == ("", "")
            assert axe_serious(page) == []

            # agree: PayPal's return saves the wallet, listed beside the card
            page.click("[data-paypal-add]")
            page.wait_for_url(f"{paypal}/agreements/approve?**")
            page.fill("input[name=email]", "jane@example.com")
            page.get_by_role("button", name="Agree and Continue").click()
            page.wait_for_url(methods_url)
            assert page.locator("p.message").inner_text() == "PayPal added: PayPal j•••@example.com."
            listed = page.locator("[data-methods]").inner_text()
            assert "visa •••• 4242" in listed and "PayPal j•••@example.com" in listed
            assert axe_serious(page) == []
            page.screenshot(path=str(shots / "paypal-added-desktop.png"), full_page=True)

            page.get_by_role("button", name="Make default: PayPal j•••@example.com").click()
            page.wait_for_selector("p.message")
            assert page.locator("p.message").inner_text() == (
                "PayPal j•••@example.com is now your default payment method."
            )
            row = page.locator("[data-methods] li", has_text="PayPal j•••@example.com")
            assert "Default" in row.inner_text()
            payer = paypal_shop["payer"]()
            assert payer.paypal_token_id and payer.default_payment_method_id == payer.paypal_token_id
            assert (payer.default_method_type, payer.default_gateway) == ("paypal", "paypal")
            assert axe_serious(page) == []
            page.screenshot(path=str(shots / "paypal-default-desktop.png"), full_page=True)
        finally:
            browser.close()
