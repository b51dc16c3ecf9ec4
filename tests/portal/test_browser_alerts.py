"""Flows 4 and 7 of issue 13 in Chromium (the live server fixture of test_browser_portal.py, plus
a Celery worker for the alert tasks): set an alert and a hard cap on the page, send events
through the API, and see the entitlement endpoint block the meter within 2 s of the API
accepting the crossing event (the drainer evaluates limits itself), the alert fire in the page
(evaluated by the queued task, well inside 60 s), and both webhooks queued once. axe-core finds
no serious or critical violation on the page at 1280 and 390 px. PORTAL_SHOTS_DIR keeps
screenshots."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from core.models import OutboxMessage
from metering.models import Meter
from metering.selectors.usage import usage_get
from portal.models import UsageAlertFiring
from tests.factories import PASSWORD
from tests.live import celery_worker
from tests.portal.test_browser_portal import (  # noqa: F401
    CHROMIUM,
    axe_serious,
    playwright_api,
    portal,
    send_event,
    shoot,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("django_db_setup")]


def in_schema(schema: str, read):
    """`read()` in the tenant's schema, on a thread of its own: Playwright's sync API keeps an
    event loop on the test's thread, where Django refuses to query."""

    def run():
        try:
            with schema_context(schema):
                return read()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def used_now(schema: str) -> int:
    def read():
        meter = Meter.objects.get(code="calls")
        start = timezone.now() - timedelta(days=40)  # covers this month's seeded usage
        return int(usage_get(meter=meter, customer="acme", start=start, end=timezone.now() + timedelta(days=1)).value)

    return in_schema(schema, read)


def test_alert_and_hard_cap_in_chromium(portal, committed_tenant):  # noqa: F811
    tenant, _ = committed_tenant
    schema = tenant.schema_name
    origin = portal["origin"]
    used = used_now(schema)
    with celery_worker(), playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(f"{origin}/accounts/login/")
            page.fill("input[name=login]", "owner@acme.example")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{origin}/organizations/acme/")

            page.click("nav.portal-tabs >> text=Alerts and limits")
            assert "No alert has fired yet." in page.content()
            assert axe_serious(page) == []
            # 4. an alert one call ahead
            form = page.locator("[data-alert-form]")
            form.locator("select[name=metric]").select_option("usage")
            form.locator("select[name=meter]").select_option("calls")
            form.locator("input[name=threshold]").fill(str(used + 1))
            form.locator("button[type=submit]").click()
            page.wait_for_selector("text=Alert added.")
            # 7. a hard cap two calls ahead
            cap = page.locator("[data-cap-form]")
            cap.locator("select[name=meter]").select_option("calls")
            cap.locator("input[name=limit]").fill(str(used + 2))
            cap.locator("input[name=hard]").check()
            cap.locator("button[type=submit]").click()
            page.wait_for_selector("text=Cap on API calls saved.")
            assert page.locator('[data-limit="calls"] [data-status]').inner_text() == "OK"
            assert axe_serious(page) == []
            shoot(page, "alerts-set-desktop")

            def entitlement() -> dict:
                response = requests.get(
                    f"{portal['api']}/api/v1/organizations/acme/entitlement",
                    headers={"Host": portal["host"], "Authorization": f"Bearer {portal['key']}"},
                    timeout=10,
                )
                assert response.status_code == 200, response.text
                return response.json()

            assert entitlement()["blocked_meters"] == []
            send_event(portal, "alert-1")  # used + 1: the alert
            send_event(portal, "alert-2")  # used + 2: the cap
            accepted = time.monotonic()
            while not entitlement()["blocked_meters"]:
                assert time.monotonic() - accepted < 2.0, "the cap did not block within 2 s"
                time.sleep(0.05)
            blocked_after = time.monotonic() - accepted
            assert [m["meter"] for m in entitlement()["blocked_meters"]] == ["calls"]
            while not in_schema(schema, lambda: UsageAlertFiring.objects.exists()):
                assert time.monotonic() - accepted < 60.0, "the alert did not fire within 60 s"
                time.sleep(0.1)
            fired_after = time.monotonic() - accepted
            print(f"hard cap blocked {blocked_after:.2f} s, alert fired {fired_after:.2f} s after the API accepted")

            # Events past the cap are still accepted and stored.
            send_event(portal, "alert-3")
            deadline = time.monotonic() + 10
            while used_now(schema) != used + 3:
                assert time.monotonic() < deadline
                time.sleep(0.1)

            page.reload()
            assert page.locator("[data-firings] li").count() == 1
            assert page.locator('[data-blocked="calls"]').is_visible()
            assert page.locator('[data-limit="calls"] [data-status]').inner_text() == "Blocked"
            assert axe_serious(page) == []
            shoot(page, "alerts-fired-desktop")
            # One email each (the webhooks' payloads are asserted in test_alerts.py).
            kinds = in_schema(schema, lambda: list(OutboxMessage.objects.filter(kind="portal.usage_email")))
            assert sorted(m.payload["kind"] for m in kinds) == ["alert", "limit"]

            phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
            small = phone.new_page()
            small.goto(f"{origin}/organizations/acme/alerts/")
            assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert axe_serious(small) == []
            shoot(small, "alerts-phone")
        finally:
            browser.close()
