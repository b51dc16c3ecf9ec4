"""Flows 5 and 9 of issue 13 in Chromium (as tests/portal/test_browser_portal.py, whose live
server fixture this reuses): change the plan with the bill preview and confirm it; invite a
member and see them listed; create a usage key and see its secret once. axe-core finds no
serious or critical violation on the new pages at 1280 and 390 px, and neither page scrolls
sideways at 390 px. PORTAL_SHOTS_DIR keeps screenshots."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from billing.models import Plan
from tests.factories import PASSWORD, PlanFactory
from tests.portal.test_browser_portal import CHROMIUM, axe_serious, playwright_api, portal, shoot  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("django_db_setup")]


@pytest.fixture
def with_plans(portal, committed_tenant, django_db_blocker):  # noqa: F811
    tenant, _ = committed_tenant
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        PlanFactory(code="pro", name="Pro", currency="EUR", base_fee="50.00", per_call=True)
        Plan.objects.filter(code__in=["basic", "pro"]).update(self_serve=True)
    connection.set_schema_to_public()
    return portal


def test_plan_change_and_team_in_chromium(with_plans):
    origin = with_plans["origin"]
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(f"{origin}/accounts/login/")
            page.fill("input[name=login]", "owner@acme.example")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{origin}/organizations/acme/")

            # 5. plan: choose, preview the bill, confirm, see the new plan
            page.click("nav.portal-tabs >> text=Plan")
            assert "Basic" in page.locator("[data-current-plan]").inner_text()
            assert axe_serious(page) == []
            shoot(page, "plan-desktop")
            page.check("input[name=plan][value=pro]")
            page.click("text=Preview the change")
            preview = page.locator("[data-preview]")
            assert "Upgrade to Pro" in preview.inner_text()
            assert "Remaining time on Pro" in preview.inner_text()
            assert page.locator("[data-preview-subtotal]").inner_text().startswith("€")
            assert axe_serious(page) == []
            shoot(page, "plan-preview-desktop")
            page.click("button:has-text('Confirm')")
            page.wait_for_selector("text=Your plan is changing to Pro.")
            assert "Pro" in page.locator("[data-current-plan]").inner_text()

            # 9. team: invite a member, who appears; a usage key, whose secret shows once
            page.click("nav.portal-tabs >> text=Team")
            page.fill("input[name=email]", "colleague@acme.example")
            page.select_option("form[action$='/team/invite/'] select[name=role]", "billing")
            page.click("button:has-text('Invite')")
            page.wait_for_selector("text=colleague@acme.example was added to the team.")
            row = page.locator('[data-member="colleague@acme.example"]')
            assert row.is_visible() and "invited" in row.inner_text()
            page.fill("input[name=name]", "Dashboards")
            page.click("text=Create usage key")
            secret = page.locator("[data-secret]").input_value()
            assert secret.startswith("bk_") and len(secret) > 40
            assert axe_serious(page) == []
            shoot(page, "team-desktop")
            page.goto(f"{origin}/organizations/acme/team/")
            assert page.locator("[data-secret]").count() == 0 and secret not in page.content()
            assert secret[:11] in page.locator("[data-keys]").inner_text()  # the prefix, to recognise it

            phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
            small = phone.new_page()
            for name in ("plan", "team"):
                small.goto(f"{origin}/organizations/acme/{name}/")
                width = small.evaluate("() => document.documentElement.scrollWidth")
                assert width <= 390, (name, width)
                assert axe_serious(small) == []
                shoot(small, f"{name}-phone")
        finally:
            browser.close()
