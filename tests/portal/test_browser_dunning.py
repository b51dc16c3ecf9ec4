"""The dunning banner in a real browser (Debian's Chromium driven by Playwright against uvicorn
on the test database): a suspended organization sees its state, the amount overdue and what is
blocked on the portal's pages, pay-now leads to the oldest overdue invoice's pay page, and
axe-core reports 0 serious or critical violations on a page with the banner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import playwright.sync_api as playwright_api
import pytest
from django.db import connection
from django_tenants.utils import schema_context

from tests.factories import PASSWORD
from tests.live import web_server
from tests.portal.test_browser_portal import AXE, CHROMIUM, axe_serious, shoot

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("django_db_setup")]


@pytest.fixture
def suspended(committed_tenant, django_db_blocker):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (scripts/system_deps.sh)")
    if not AXE.exists():
        pytest.fail("node_modules/axe-core is missing (scripts/assets.sh)")
    from dunning.services.run import dunning_run
    from invoicing.models import Invoice
    from tests.portal.scenario import BERLIN, seed

    tenant, _ = committed_tenant
    now = datetime.now(UTC)
    local = now.astimezone(BERLIN)
    start = datetime(local.year, local.month, 1, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        seeded = seed(email="owner@acme.example", start=start, now=now)
        invoice = Invoice.objects.get(pk=seeded["invoice"].pk)
        dunning_run(at=invoice.due_at + timedelta(days=15))  # no method to charge: overdue from the due date
    connection.set_schema_to_public()
    host = tenant.get_primary_domain().domain
    with web_server() as base:
        port = base.rsplit(":", 1)[1]
        yield {"origin": f"http://{host}:{port}", "invoice": invoice}


def test_banner_and_pay_now_in_chromium(suspended):
    origin, invoice = suspended["origin"], suspended["invoice"]
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"{origin}/accounts/login/")
            page.fill("input[name=login]", "owner@acme.example")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{origin}/organizations/acme/")
            for path in ("/organizations/acme/", "/organizations/acme/plan/"):
                page.goto(origin + path)
                banner = page.locator('[data-dunning-banner="suspended"]')
                assert banner.is_visible()
                assert banner.locator("h2").inner_text() == "Your account is suspended"
                assert page.locator("[data-dunning-overdue]").inner_text() == (
                    f"Overdue: €{invoice.amount_due:.2f}, the oldest on invoice {invoice.number}."
                )
                assert [li.inner_text() for li in page.locator("[data-dunning-restrictions] li").all()][1].startswith(
                    "Usage access blocked since "
                )
            assert axe_serious(page) == []
            shoot(page, "dunning-banner")
            page.click("[data-dunning-pay]")
            page.wait_for_url(f"{origin}/organizations/acme/invoices/{invoice.pk}/pay/")
        finally:
            browser.close()
