"""A background report (issue 13 flow 8) built by a real Celery worker process: the tenant
travels in the task headers, the worker claims the export, writes its progress and stores the
CSV and XLSX under the tenant's media, which the portal's download view then serves."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from portal.report_exports import report_export_request
from portal.reports import ReportSpec
from tests.live import celery_worker
from tests.portal.scenario import BERLIN, daily_calls, seed

pytestmark = [pytest.mark.usefixtures("django_db_setup"), pytest.mark.slow]


def test_report_export_runs_in_the_worker(committed_tenant, django_db_blocker):
    tenant, _ = committed_tenant
    now = datetime.now(UTC)
    today = now.astimezone(BERLIN).date()
    start = datetime(today.year, today.month, 1, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    spec = ReportSpec(
        start=today.replace(day=1).isoformat(),
        end=today.isoformat(),
        meters=["calls"],
        group_by="region",
        granularity="day",
    )
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            seeded = seed(email="owner@acme.example", start=start, now=now)
        with celery_worker():
            with schema_context(tenant.schema_name):
                export = report_export_request(actor=seeded["user"], organization=seeded["organization"], spec=spec)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with schema_context(tenant.schema_name):
                    export.refresh_from_db()
                if export.status in ("done", "failed"):
                    break
                time.sleep(0.2)
        assert (export.status, export.done, export.total) == ("done", today.day, today.day)
        client = Client(HTTP_HOST=tenant.get_primary_domain().domain)
        with schema_context(tenant.schema_name):
            client.force_login(seeded["user"])
        response = client.get(f"/organizations/acme/reports/exports/{export.pk}/csv/")
        connection.set_schema_to_public()
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))[1:]
    assert sum(int(r[4]) for r in rows) == sum(daily_calls(d) for d in range(1, today.day)) + 5
