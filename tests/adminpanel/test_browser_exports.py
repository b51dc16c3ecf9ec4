"""Accounting exports in Chromium (the live server and finance login of
tests/adminpanel/test_browser_staff.py, a real Celery worker as tests/portal/test_report_worker.py
runs): finance opens Exports from the staff nav, asks for the invoices of the last year, watches
the row until the worker has built it, downloads the CSV and reads back exactly the tenant's
finalized invoices of the period. axe-core finds no serious or critical violation on the page."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from adminpanel.exports import INVOICE_COLUMNS
from tests.adminpanel.test_browser_staff import staff_sign_in, with_staff  # noqa: F401 (a fixture)
from tests.live import celery_worker
from tests.portal.test_browser_portal import CHROMIUM, axe_serious, playwright_api, portal, shoot  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("django_db_setup")]


def test_build_and_download_an_export_in_chromium(with_staff, committed_tenant, django_db_blocker, tmp_path):  # noqa: F811
    from invoicing.models import AccountingExport, Invoice

    origin = with_staff["origin"]
    tenant, _ = committed_tenant
    end = datetime.now(UTC).date()
    start = end - timedelta(days=365)
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        expected = sorted(
            (i.number, i.status, i.organization.external_id, i.currency, f"{i.total:.2f}", f"{i.amount_due:.2f}")
            for i in Invoice.objects.exclude(status="draft").filter(
                issued_at__date__gte=start, issued_at__date__lte=end
            )
        )
    connection.set_schema_to_public()
    assert expected  # the portal's scenario has finalized invoices this month
    with django_db_blocker.unblock(), celery_worker(), playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page = context.new_page()
            staff_sign_in(page, origin, "/staff/", email="finance@seller.example", secret=with_staff["secret"])
            page.click("nav[aria-label='Staff sections'] >> text=Exports")
            page.wait_for_url(f"{origin}/staff/exports/")
            assert page.locator("[data-table=exports] tbody").inner_text() == "No export yet."

            page.select_option("select[name=kind]", "invoices")
            page.fill("input[name=start]", start.isoformat())
            page.fill("input[name=end]", end.isoformat())
            page.click("button:has-text('Build export')")
            page.wait_for_url(f"{origin}/staff/exports/")
            page.wait_for_selector("text=Invoices: building in the background.")
            row = page.locator("tr[data-export]")
            assert row.count() == 1
            assert row.locator("td").first.inner_text() == f"{start.isoformat()} to {end.isoformat()}"
            page.wait_for_selector("tr[data-export-status=done] [data-download=csv]", timeout=60_000)
            assert f"Ready: {len(expected)} rows" in row.inner_text()
            assert axe_serious(page) == []
            shoot(page, "staff-exports-desktop")

            with page.expect_download() as download:
                page.click("[data-download=csv]")
            assert download.value.suggested_filename == f"invoices-{start}-{end}.csv"
            saved = Path(tmp_path) / "invoices.csv"
            download.value.save_as(saved)
            body = list(csv.reader(io.StringIO(saved.read_text())))
            assert body[0] == INVOICE_COLUMNS
            assert sorted((r[0], r[1], r[2], r[4], r[11], r[14]) for r in body[1:]) == expected
        finally:
            browser.close()
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        export = AccountingExport.objects.select_related("requested_by").get()
        events = [e.changes["event"][1] for e in export_log(export)]
    connection.set_schema_to_public()
    assert (export.status, export.rows, export.requested_by.email) == ("done", len(expected), "finance@seller.example")
    assert events == ["export.requested", "export.downloaded"]


def export_log(export):
    from auditlog.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    kind = ContentType.objects.get_for_model(export)
    return LogEntry.objects.filter(content_type=kind, object_pk=str(export.pk)).order_by("pk")
