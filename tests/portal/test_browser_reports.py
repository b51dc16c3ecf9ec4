"""Flow 8 of issue 13 in Chromium (as tests/portal/test_browser_portal.py, whose live server
fixture this reuses): sign in, open Reports, build this month's report by day grouped by region,
see the chart drawn and the table, download the CSV and read it back; a reversed range is a
form error. axe-core finds no serious or critical violation at 1280 and 390 px, and the page
does not scroll sideways at 390 px. PORTAL_SHOTS_DIR keeps screenshots."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.factories import PASSWORD
from tests.portal.scenario import BERLIN, daily_calls
from tests.portal.test_browser_portal import CHROMIUM, axe_serious, playwright_api, portal, shoot  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("django_db_setup")]


def expected_rows(today) -> list[list[str]]:
    """The seeded calls of this month's Berlin days, by region (tests/portal/scenario.py)."""
    rows = []
    for day in range(1, today.day):
        n = daily_calls(day)
        start = datetime(today.year, today.month, day, tzinfo=BERLIN)
        label = start.strftime("%a %-d %b %Y")
        rows.append([start.isoformat(), label, "calls", "eu", str((n + 1) // 2)])
        rows.append([start.isoformat(), label, "calls", "us", str(n // 2)])
    start = datetime(today.year, today.month, today.day, tzinfo=BERLIN)
    rows.append([start.isoformat(), start.strftime("%a %-d %b %Y"), "calls", "eu", "5"])  # today's five
    return rows


def test_build_a_report_and_download_csv_in_chromium(portal, tmp_path):  # noqa: F811
    origin = portal["origin"]
    today = datetime.now(UTC).astimezone(BERLIN).date()
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page = context.new_page()
            page.goto(f"{origin}/accounts/login/")
            page.fill("input[name=login]", "owner@acme.example")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{origin}/organizations/acme/")

            page.click("nav.portal-tabs >> text=Reports")
            assert page.input_value("input[name=start]") == today.replace(day=1).isoformat()
            page.check("input[name=meters][value=calls]")
            page.select_option("select[name=group_by]", "region")
            page.select_option("select[name=granularity]", "day")
            page.click("button:has-text('Show report')")
            page.wait_for_selector("canvas[data-drawn=true]")
            table = page.locator("[data-report-table] tbody tr")
            assert table.count() == len(expected_rows(today))
            assert axe_serious(page) == []
            shoot(page, "reports-desktop")

            with page.expect_download() as download:
                page.click("[data-download=csv]")
            saved = Path(tmp_path) / "report.csv"
            download.value.save_as(saved)
            rows = list(csv.reader(io.StringIO(saved.read_text())))
            assert rows[0] == ["period_start", "period (Europe/Berlin)", "meter", "group", "value"]
            assert rows[1:] == expected_rows(today)

            # a reversed range: the form says so, nothing is shown
            page.fill("input[name=end]", "2000-01-01")
            page.click("button:has-text('Show report')")
            assert "The last day must not be before the first." in page.locator("[data-error=end]").inner_text()
            assert page.locator("[data-report]").count() == 0
            assert axe_serious(page) == []

            phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
            small = phone.new_page()
            small.goto(
                f"{origin}/organizations/acme/reports/?start={today.replace(day=1)}&end={today}"
                "&meters=calls&group_by=region&granularity=day"
            )
            small.wait_for_selector("canvas[data-drawn=true]")
            width = small.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 390, width
            assert axe_serious(small) == []
            shoot(small, "reports-phone")
        finally:
            browser.close()
