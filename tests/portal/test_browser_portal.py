"""The portal in a real browser: Debian's Chromium driven by Playwright against uvicorn serving
the ASGI app (HTTP and the live-usage websocket) on the test database, with a drainer process
publishing "usage changed" as in production. Flows 1-3 of issue 13 end to end, and an axe-core
scan of every portal page (0 serious or critical violations).

Set PORTAL_SHOTS_DIR to also keep screenshots of each page at desktop and phone width."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import playwright.sync_api as playwright_api
import pytest
import requests
from django.db import connection
from django_tenants.utils import schema_context

from tests.factories import PASSWORD
from tests.live import drainer, web_server

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("django_db_setup")]
CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PAGES = {
    "dashboard": "/organizations/acme/",
    "billing": "/organizations/acme/billing/",
    "projection": "/organizations/acme/projection/",
}


@pytest.fixture
def portal(committed_tenant, django_db_blocker):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (scripts/system_deps.sh)")
    if not AXE.exists():
        pytest.fail("node_modules/axe-core is missing (scripts/assets.sh)")
    from tests.portal.scenario import BERLIN, seed

    tenant, key = committed_tenant
    now = datetime.now(UTC)
    local = now.astimezone(BERLIN)
    start = datetime(local.year, local.month, 1, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        seeded = seed(email="owner@acme.example", start=start, now=now)
    connection.set_schema_to_public()
    host = tenant.get_primary_domain().domain
    running = drainer()
    try:
        with web_server() as base:
            port = base.rsplit(":", 1)[1]
            yield {"origin": f"http://{host}:{port}", "api": base, "host": f"{host}:{port}", "key": key, **seeded}
    finally:
        running.send_signal(signal.SIGTERM)
        running.wait(timeout=30)


def axe_serious(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in result if v["impact"] in ("serious", "critical")]


def shoot(page, name: str) -> None:
    folder = os.environ.get("PORTAL_SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def send_event(portal, event_id: str) -> None:
    body = {
        "events": [
            {
                "id": event_id,
                "customer": "acme",
                "type": "call",
                "timestamp": datetime.now(UTC).isoformat(),
                "properties": {"region": "us"},
            }
        ]
    }
    response = requests.post(
        f"{portal['api']}/api/v1/events",
        data=msgspec.json.encode(body),
        headers={
            "Host": portal["host"],
            "Authorization": f"Bearer {portal['key']}",
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert response.status_code == 202, response.text


def test_portal_flows_in_chromium(portal, tmp_path):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page = context.new_page()
            # sign in
            page.goto(f"{portal['origin']}/accounts/login/")
            page.fill("input[name=login]", "owner@acme.example")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{portal['origin']}/organizations/acme/")

            # 1. dashboard: priced spend, a drawn chart, live
            spend = page.locator("[data-spend]").inner_text()
            assert spend.startswith("€"), spend
            page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas[data-chart]'))")
            page.wait_for_function("() => document.querySelector('[data-live-status]').textContent.startsWith('Live')")
            before = int(page.locator('[data-meter-value="calls"]').inner_text())
            assert axe_serious(page) == []
            shoot(page, "dashboard-desktop")

            sent = time.monotonic()
            send_event(portal, "browser-live-1")
            page.wait_for_function(
                f"() => document.querySelector('[data-meter-value=\"calls\"]').textContent.trim() === '{before + 1}'",
                timeout=2000,
            )
            live_seconds = time.monotonic() - sent
            assert live_seconds < 2.0
            assert page.locator("[data-spend]").inner_text() != spend  # re-priced: one more call at 0.01
            # still the same page: no reload (a marker set before survives)
            page.evaluate("() => { window.__marker = 1 }")

            # 2. billing history: the finalized invoice and its PDF
            page.click("text=Billing history")
            number = portal["invoice"].number
            row = page.locator("tr", has_text=f"Invoice {number}")
            assert "€10.00" in row.inner_text() and "Open" in row.inner_text()
            with page.expect_download() as download_info:
                row.get_by_role("link", name=f"Download invoice {number} as PDF").click()
            saved = tmp_path / "invoice.pdf"
            download_info.value.save_as(saved)
            assert saved.read_bytes().startswith(b"%PDF-")
            assert axe_serious(page) == []
            shoot(page, "billing-desktop")

            # 3. projection: the band beside the upcoming invoice
            page.click("text=Cost projection")
            band = page.locator("[data-band]").inner_text()
            assert band.startswith("Likely between €") and " and €" in band
            assert page.locator("#preview-heading").is_visible()
            assert axe_serious(page) == []
            shoot(page, "projection-desktop")

            # phone width: no sideways scrolling of the page itself
            phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
            small = phone.new_page()
            for name, path in PAGES.items():
                small.goto(portal["origin"] + path)
                width = small.evaluate("() => document.documentElement.scrollWidth")
                assert width <= 390, (name, width)
                assert axe_serious(small) == []
                shoot(small, f"{name}-phone")
            # keyboard: the first Tab lands on the skip link
            small.goto(portal["origin"] + PAGES["dashboard"])
            small.keyboard.press("Tab")
            assert small.evaluate("() => document.activeElement.textContent") == "Skip to content"
        finally:
            browser.close()
    print(f"live update after {live_seconds:.2f} s")
