"""Customer 360 in Chromium (as tests/portal/test_browser_portal.py, whose live server fixture
this reuses): a staff member signs in with their second factor, searches, opens the organization,
grants credit through the confirm step that shows the money effect, and sees the new balance and
the audit entry. axe-core finds no serious or critical violation on the search, organization,
confirm and audit-log pages at 1280 px, nor on the organization page at 390 px, which does not
scroll sideways. PORTAL_SHOTS_DIR keeps screenshots."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from tests.factories import PASSWORD, UserFactory, totp_enable, totp_now
from tests.portal.test_browser_portal import CHROMIUM, axe_serious, playwright_api, portal, shoot  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("django_db_setup")]


def staff_sign_in(page, origin: str, path: str, *, email: str, secret: str) -> None:
    """Open `path` as a signed-out staff member: the sign-in page, the password, then the TOTP
    second factor; back on `path`."""
    page.goto(f"{origin}{path}")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.fill("input[name=code]", totp_now(secret))
    page.click("button[type=submit]")
    page.wait_for_url(f"{origin}{path}")


@pytest.fixture
def with_staff(portal, committed_tenant, django_db_blocker):  # noqa: F811
    tenant, _ = committed_tenant
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        user = UserFactory(email="finance@seller.example", staff_role="finance")
        secret = totp_enable(user)
    connection.set_schema_to_public()
    return {**portal, "secret": secret}


def test_search_open_and_grant_credit_in_chromium(with_staff):
    origin = with_staff["origin"]
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            staff_sign_in(
                page, origin, "/staff/organizations/", email="finance@seller.example", secret=with_staff["secret"]
            )

            page.fill("input[name=q]", "acme")
            page.click("button:has-text('Search')")
            page.wait_for_url(f"{origin}/staff/organizations/?q=acme")
            assert axe_serious(page) == []
            shoot(page, "staff-search-desktop")
            page.click("text=Acme GmbH")
            page.wait_for_url(f"{origin}/staff/organizations/acme/")
            assert page.locator("[data-credit-balance]").inner_text() == "€0.00"
            page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas[data-chart]'))")
            assert axe_serious(page) == []
            shoot(page, "staff-organization-desktop")

            page.click("summary:has-text('Grant credit')")
            page.fill("form[action$='/credit/'] input[name=amount]", "12.50")
            page.fill("form[action$='/credit/'] input[name=description]", "Goodwill")
            page.click("button:has-text('Review: grant credit')")
            effect = page.locator("[data-effect]").all_inner_texts()
            assert effect == ["€12.50", "€0.00 → €12.50", "never"]
            assert axe_serious(page) == []
            shoot(page, "staff-confirm-desktop")
            page.click("button:has-text('Confirm: grant credit')")
            page.wait_for_selector("text=Credit granted.")
            assert page.url == f"{origin}/staff/organizations/acme/"
            assert page.locator("[data-credit-balance]").inner_text() == "€12.50"
            trail = page.locator("section[aria-labelledby=audit-heading] tbody tr").first.inner_text()
            assert "finance@seller.example" in trail and "create" in trail and "Goodwill" in trail

            page.click("nav[aria-label='Staff sections'] >> text=Audit log")
            page.fill("input[name=actor]", "finance@")
            page.click("button:has-text('Filter')")
            assert page.locator("tbody tr").count() >= 1
            assert axe_serious(page) == []
            shoot(page, "staff-audit-desktop")

            phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
            small = phone.new_page()
            small.goto(f"{origin}/staff/organizations/acme/")
            assert small.evaluate("() => document.documentElement.scrollWidth") <= 390
            assert axe_serious(small) == []
            shoot(small, "staff-organization-phone")
        finally:
            browser.close()


def test_dunning_view_and_pause_in_chromium(with_staff, committed_tenant, django_db_blocker):
    """The open invoice of the portal's scenario put in dunning (its case and account written
    directly: the run's path is dunning's tests'); staff go Home → Dunning → the organization and
    pause its dunning through the confirm step."""
    from dunning.models import DunningAccount, DunningCase
    from invoicing.models import Invoice

    origin = with_staff["origin"]
    tenant, _ = committed_tenant
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        invoice = Invoice.objects.filter(status="open").get()
        DunningCase.objects.create(invoice=invoice, organization=invoice.organization, started_at=invoice.due_at)
        DunningAccount.objects.create(
            organization=invoice.organization, status="past_due", since=invoice.due_at, reason="payment failed"
        )
        due = f"€{invoice.amount_due:.2f}"
    connection.set_schema_to_public()
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            staff_sign_in(page, origin, "/staff/", email="finance@seller.example", secret=with_staff["secret"])
            page.click("nav[aria-label='Staff sections'] >> text=Dunning")
            page.wait_for_url(f"{origin}/staff/dunning/")
            assert page.locator("[data-figure=invoices]").inner_text() == "1"
            assert page.locator("[data-figure=at-risk]").inner_text() == due
            assert page.locator("tr[data-stage=past_due]").inner_text().split("\t") == ["Past Due", "1", due]
            assert axe_serious(page) == []
            shoot(page, "staff-dunning-desktop")

            page.click("tr[data-account=acme] >> text=Acme GmbH")
            page.wait_for_url(f"{origin}/staff/organizations/acme/#dunning-heading")
            page.click("summary:has-text('Pause or resume dunning')")
            page.select_option("form[action$='/dunning/pause/'] select[name=pause]", "1")
            page.click("button:has-text('Review: pause or resume dunning')")
            assert page.locator("[data-effect]").all_inner_texts()[:2] == ["running → paused", "1"]
            assert axe_serious(page) == []
            shoot(page, "staff-dunning-confirm-desktop")
            page.click("button:has-text('Confirm: pause or resume dunning')")
            page.wait_for_selector("text=Dunning paused.")
            assert "· paused" in page.locator("[data-dunning]").inner_text()

            phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
            small = phone.new_page()
            small.goto(f"{origin}/staff/dunning/")
            assert small.evaluate("() => document.documentElement.scrollWidth") <= 390
            assert axe_serious(small) == []
            shoot(small, "staff-dunning-phone")
        finally:
            browser.close()
