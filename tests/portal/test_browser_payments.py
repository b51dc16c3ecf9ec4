"""The payment pages in a real browser: Debian's Chromium driven by Playwright against uvicorn on
the test database, with localstripe (started by `config.embedded exec`) as Stripe's API and as
Stripe.js: the card is typed into the gateway's own element, which talks to the gateway directly.
Add a card and see it listed, a declined card's message, pay an open invoice (a declined card,
then the default one) and see it paid; no request to our server carries a card number; axe-core
reports 0 serious or critical violations on the new pages at desktop and phone width. A SEPA
mandate: the IBAN typed into the gateway's element (a frame of the proxy's origin, served with
Stripe.js by config/devstripe.py), made the default, the card removed, and pay-now with the
debit shown as processing.

Set PORTAL_SHOTS_DIR to keep screenshots."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import playwright.sync_api as playwright_api
import pytest
from django.db import connection
from django_tenants.utils import schema_context

from config.devstripe import stripe_proxy
from tests.factories import PASSWORD
from tests.live import web_server
from tests.portal.test_browser_portal import AXE, CHROMIUM, shoot

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("django_db_setup")]
SECRET_KEY = "sk_test_" + "b" * 24
PUBLISHABLE_KEY = "pk_test_" + "b" * 24
CARDS = {"ok": "4242424242424242", "declined_at_setup": "4000000000000002", "declined_on_charge": "4000000000000341"}


@pytest.fixture
def shop(committed_tenant, django_db_blocker):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (scripts/system_deps.sh)")
    if not AXE.exists():
        pytest.fail("node_modules/axe-core is missing (scripts/assets.sh)")
    if not os.environ.get("STRIPE_JS_URL", "").startswith("http://127.0.0.1"):
        pytest.skip("needs the localstripe that `config.embedded exec` starts (STRIPE_JS_URL)")
    from payments.models import GatewaySettings
    from tests.portal.scenario import BERLIN, seed

    tenant, _ = committed_tenant
    now = datetime.now(UTC)
    local = now.astimezone(BERLIN)
    start = datetime(local.year, local.month, 1, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        seeded = seed(email="owner@acme.example", start=start, now=now)
        row = GatewaySettings(stripe_publishable_key=PUBLISHABLE_KEY)
        row.stripe_secret_key_set(SECRET_KEY)
        row.save()
    connection.set_schema_to_public()
    host = tenant.get_primary_domain().domain
    # The server reaches localstripe through a gap-closing proxy of its own (off-session confirms);
    # the browser's Stripe.js talks to localstripe itself, as it would to Stripe.
    upstream = os.environ.get("LOCALSTRIPE_URL") or os.environ["STRIPE_API_BASE"]
    # Stripe.js comes from the same proxy (localstripe's, plus the IBAN element it lacks).
    with (
        stripe_proxy(upstream) as proxy,
        web_server(STRIPE_API_BASE=proxy.url, STRIPE_JS_URL=f"{proxy.url}/js.stripe.com/v3/") as base,
    ):
        port = base.rsplit(":", 1)[1]
        yield {"origin": f"http://{host}:{port}", "proxy": proxy, **seeded}


def axe_serious(page) -> list[str]:
    """axe-core on the page, leaving out the gateway's own elements (Stripe's are iframes of
    theirs; the test stand-ins are bare inputs and a frame of the proxy): we do not control
    their markup."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => (await axe.run({include: [document],"
        " exclude: [['[data-card-element]'], ['[data-iban-element]']]})).violations"
    )
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in result if v["impact"] in ("serious", "critical")]


def type_card(page, number: str) -> None:
    """Into the gateway's element, as a customer would."""
    element = page.locator("[data-card-element]")
    element.locator("input[placeholder=number]").fill(number)
    element.locator("input[placeholder=exp_month]").fill("12")
    element.locator("input[placeholder=exp_year]").fill("34")
    element.locator("input[placeholder=cvc]").fill("123")
    element.locator("input[placeholder=postal_code]").fill("10115")


def test_add_a_card_pay_an_invoice_and_see_a_decline_in_chromium(shop):
    origin = shop["origin"]
    methods_url = f"{origin}/organizations/acme/payment-methods/"
    number = shop["invoice"].number
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            to_us: list[str] = []  # every request body our own server received
            page.on("request", lambda r: to_us.append(r.post_data or "") if r.url.startswith(origin) else None)
            page.goto(f"{origin}/accounts/login/")
            page.fill("input[name=login]", "owner@acme.example")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{origin}/organizations/acme/")

            # payment methods: none yet; a card that the issuer refuses shows its message
            page.click("text=Payment methods")
            assert "No saved payment methods yet." in page.content()
            page.wait_for_function("() => document.querySelector('[data-card-element] input')")
            type_card(page, CARDS["declined_at_setup"])
            page.click("[data-card-submit]")
            page.wait_for_function("() => document.querySelector('[data-card-errors]').textContent.trim() !== ''")
            assert page.locator("[data-card-errors]").inner_text() == "Your card was declined."
            assert page.url == methods_url

            # a working card: saved at the gateway, listed with brand, last four and expiry
            type_card(page, CARDS["ok"])
            page.click("[data-card-submit]")
            page.wait_for_selector("[data-methods]")
            assert page.locator("p.message").inner_text() == (
                "Card added: visa •••• 4242, now your default payment method."
            )
            listed = page.locator("[data-methods] li").inner_text()
            assert "visa •••• 4242" in listed and "expires 12/2034" in listed and "Default" in listed
            assert axe_serious(page) == []
            shoot(page, "payment-methods-desktop")

            # pay now: first with a new card the issuer declines, then with the default card
            page.click("text=Billing history")
            row = page.locator("tr", has_text=f"Invoice {number}")
            row.get_by_role("button", name=f"Pay now: invoice {number}").click()
            page.wait_for_selector("[data-pay-default]")
            assert page.locator("[data-amount-due]").inner_text() == "€10.00"
            assert axe_serious(page) == []
            shoot(page, "pay-desktop")
            page.wait_for_function("() => document.querySelector('[data-card-element] input')")
            type_card(page, CARDS["declined_on_charge"])
            page.click("[data-card-submit]")
            page.wait_for_selector("p.message")
            assert page.locator("p.message").inner_text() == (
                "Your card was declined. Please try again later or use another card."
            )
            shoot(page, "pay-declined-desktop")
            page.click("[data-pay-default]")
            page.wait_for_url(f"{origin}/organizations/acme/billing/")
            assert page.locator("p.message").inner_text() == f"Thank you: invoice {number} is paid."
            row = page.locator("tr", has_text=f"Invoice {number}")
            assert "Paid" in row.inner_text() and "Pay now" not in row.inner_text()
            assert axe_serious(page) == []
            shoot(page, "billing-paid-desktop")

            # SAQ-A: no request to our server carried a card number
            for card in CARDS.values():
                assert not any(card in body for body in to_us), card
            assert any("setup=seti_" in body for body in to_us)

            # phone width: no sideways scroll, axe clean
            phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
            small = phone.new_page()
            invoice_path = f"/organizations/acme/invoices/{shop['invoice'].pk}/pay/"
            for name, path in {"payment-methods": "/organizations/acme/payment-methods/", "pay": invoice_path}.items():
                small.goto(origin + path)
                width = small.evaluate("() => document.documentElement.scrollWidth")
                assert width <= 390, (name, width)
                assert axe_serious(small) == []
                shoot(small, f"{name}-phone")
        finally:
            browser.close()


IBANS = {"invalid": "DE89370400440532013099", "processing": "DE62370400440532013001"}
ACH_ACCOUNT = "000123456789"


def login(page, origin: str) -> None:
    page.goto(f"{origin}/accounts/login/")
    page.fill("input[name=login]", "owner@acme.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{origin}/organizations/acme/")


def iban_ready(page) -> None:
    """The gateway's IBAN frame has loaded its input (a page load mounts it anew)."""
    page.frame_locator("[data-iban-element] iframe").locator("input#iban").wait_for()


def type_iban(page, iban: str) -> None:
    """Into the gateway's IBAN element (a frame of the gateway's origin), as a customer would."""
    page.frame_locator("[data-iban-element] iframe").locator("input#iban").fill(iban)


def test_sepa_mandate_ach_account_default_remove_and_pay_now_processing_in_chromium(shop, tmp_path):
    origin = shop["origin"]
    number = shop["invoice"].number
    shots = Path(os.environ.get("PORTAL_SHOTS_DIR") or tmp_path)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            to_us: list[str] = []  # every request body our own server received
            page.on("request", lambda r: to_us.append(r.post_data or "") if r.url.startswith(origin) else None)
            login(page, origin)
            page.click("text=Payment methods")

            # a card first, so that there is a default to change
            page.wait_for_function("() => document.querySelector('[data-card-element] input')")
            type_card(page, CARDS["ok"])
            page.click("[data-card-submit]")
            page.wait_for_selector("[data-methods]")

            # the mandate: its text names the seller; an invalid IBAN is refused by the element
            mandate = page.locator("[data-mandate]").inner_text()
            assert mandate.startswith(
                "By providing your payment information and confirming this mandate, you authorise (A) "
            )
            assert "Seller GmbH and Stripe, our payment service provider" in mandate
            assert "A refund must be claimed within 8 weeks" in mandate
            page.wait_for_function("() => document.querySelector('[data-iban-element] iframe')")
            page.fill("[data-sepa-name]", "Acme GmbH")
            page.fill("[data-sepa-email]", "billing@acme.example")
            type_iban(page, IBANS["invalid"])
            page.click("[data-sepa-submit]")
            page.wait_for_function("() => document.querySelector('[data-sepa-errors]').textContent.trim() !== ''")
            assert page.locator("[data-sepa-errors]").inner_text() == "Your IBAN is invalid."
            assert not any("setup=seti_" in body for body in to_us[-1:])

            type_iban(page, IBANS["processing"])
            page.click("[data-sepa-submit]")
            page.wait_for_selector("text=SEPA Direct Debit mandate saved")
            assert page.locator("p.message").inner_text() == "SEPA Direct Debit mandate saved: SEPA •••• 3001."
            listed = page.locator("[data-methods]").inner_text()
            assert "visa •••• 4242" in listed and "SEPA •••• 3001" in listed
            assert axe_serious(page) == []
            iban_ready(page)
            page.screenshot(path=str(shots / "sepa-added-desktop.png"), full_page=True)
            page.locator("[data-sepa-form]").screenshot(path=str(shots / "sepa-form-desktop.png"))

            # set default, then remove the card
            page.get_by_role("button", name="Make default: SEPA •••• 3001").click()
            page.wait_for_selector("p.message")
            assert page.locator("p.message").inner_text() == "SEPA •••• 3001 is now your default payment method."
            sepa_row = page.locator("[data-methods] li", has_text="SEPA •••• 3001")
            assert "Default" in sepa_row.inner_text()
            page.get_by_role("button", name="Remove: visa •••• 4242").click()
            page.wait_for_selector("p.message")
            assert page.locator("p.message").inner_text() == "Payment method removed."
            assert page.locator("[data-methods] li").count() == 1
            assert axe_serious(page) == []
            iban_ready(page)
            page.screenshot(path=str(shots / "sepa-default-desktop.png"), full_page=True)

            # pay now with the mandate: the debit is processing, and the page says so honestly
            page.click("text=Billing history")
            page.get_by_role("button", name=f"Pay now: invoice {number}").click()
            page.wait_for_selector("[data-pay-default]")
            assert page.locator("[data-pay-default]").inner_text() == "Pay €10.00 with SEPA •••• 3001"
            page.click("[data-pay-default]")
            page.wait_for_url(f"{origin}/organizations/acme/billing/")
            assert page.locator("p.message").inner_text() == (
                f"Your payment of invoice {number} is processing: a bank debit takes a few business days to "
                "confirm. The invoice stays open until then; we will email you."
            )
            assert axe_serious(page) == []
            page.goto(f"{origin}/organizations/acme/invoices/{shop['invoice'].pk}/pay/")
            state = page.locator("[data-pay-state]").inner_text()
            assert state.startswith("A SEPA Direct Debit of €10.00 for this invoice is processing.")
            assert page.locator("[data-pay-default]").count() == 0
            assert axe_serious(page) == []
            page.screenshot(path=str(shots / "pay-processing-desktop.png"), full_page=True)

            # a US bank account, connected in the gateway's dialog, then removed
            page.click("text=Payment methods")
            page.fill("[data-ach-email]", "billing@acme.example")
            page.click("[data-ach-submit]")
            dialog = page.frame_locator("iframe[title='Connect your bank account']")
            dialog.locator("#routing").fill("110000000")
            dialog.locator("#account").fill(ACH_ACCOUNT)
            page.screenshot(path=str(shots / "ach-dialog-desktop.png"))
            dialog.get_by_role("button", name="Connect account").click()
            page.wait_for_selector("text=Bank account added")
            assert page.locator("p.message").inner_text() == "Bank account added: ACH •••• 6789."
            assert "ACH •••• 6789" in page.locator("[data-methods]").inner_text()
            assert axe_serious(page) == []
            page.get_by_role("button", name="Remove: ACH •••• 6789").click()
            page.wait_for_selector("p.message")
            assert page.locator("p.message").inner_text() == "Payment method removed."
            assert "ACH" not in page.locator("[data-methods]").inner_text()

            # no IBAN, account or card number reached our server; only the setups' ids did
            for secret in [*IBANS.values(), *CARDS.values(), "370400440532013", ACH_ACCOUNT]:
                assert not any(secret in body for body in to_us), secret
            assert sum("setup=seti_" in body for body in to_us) == 3

            # phone width: the mandate form fits, axe clean
            phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
            small = phone.new_page()
            small.goto(f"{origin}/organizations/acme/payment-methods/")
            iban_ready(small)
            assert small.evaluate("() => document.documentElement.scrollWidth") <= 390
            assert axe_serious(small) == []
            small.screenshot(path=str(shots / "sepa-phone.png"), full_page=True)
        finally:
            browser.close()
