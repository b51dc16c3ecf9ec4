"""The portal's reports page (issue 13 flow 8) on the seeded customer (tests/portal/scenario.py:
Acme in Europe/Berlin, time frozen at 2027-04-15 12:00 UTC): the table and chart data by day,
hour and month in Berlin time, grouped by region; CSV and XLSX parsed back; the form's errors
(400, nothing built); the background path (task, progress page, download); the statement PDF;
and another organization's report and exports are 404."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from unittest import mock

import pytest
import time_machine
from openpyxl import load_workbook
from pypdf import PdfReader

from portal.models import ReportExport
from portal.report_exports import report_export_run
from tests.factories import MembershipFactory, OrganizationFactory
from tests.portal.scenario import BERLIN, NOW, seed

pytestmark = pytest.mark.django_db
REPORTS = "/organizations/acme/reports/"
GROUPED = {"start": "2027-04-01", "end": "2027-04-03", "meters": "calls", "granularity": "day", "group_by": "region"}


@pytest.fixture
def acme(in_a, client_a):
    seeded = seed()
    with time_machine.travel(NOW, tick=False):
        client_a.force_login(seeded["user"])
        yield seeded


def text(response, status: int = 200) -> str:
    assert response.status_code == status, response.status_code
    return response.content.decode()


def test_the_form_starts_with_this_month_in_local_days(acme, client_a):
    page = text(client_a.get(REPORTS))
    assert 'name="start" value="2027-04-01"' in page and 'name="end" value="2027-04-15"' in page
    assert 'aria-current="page">Reports' in page
    assert "data-report>" not in page and ReportExport.objects.count() == 0


def test_daily_report_grouped_by_region_in_berlin_days(acme, client_a):
    page = text(client_a.get(REPORTS, GROUPED))
    assert "1 Apr 2027 to 3 Apr 2027, by day, grouped by region" in page
    # day d has ((d - 1) % 3 + 1) * 5 calls at Berlin noon, alternately eu and us
    rows = [
        ("Thu 1 Apr 2027", "eu", "3"),
        ("Thu 1 Apr 2027", "us", "2"),
        ("Fri 2 Apr 2027", "eu", "5"),
        ("Fri 2 Apr 2027", "us", "5"),
        ("Sat 3 Apr 2027", "eu", "8"),
        ("Sat 3 Apr 2027", "us", "7"),
    ]
    for day, region, value in rows:
        assert (
            f'<tr><td class="nowrap">{day}</td><td>API calls</td><td>{region}</td><td class="num">{value}</td></tr>'
            in page
        )
    assert page.count('<tr><td class="nowrap">') == 6
    chart = json.loads(page.split('id="report-chart-calls" type="application/json">')[1].split("</script>")[0])
    assert chart["labels"] == ["Thu 1 Apr 2027", "Fri 2 Apr 2027", "Sat 3 Apr 2027"]
    assert chart["datasets"] == [
        {"label": "eu", "values": ["3", "5", "8"]},
        {"label": "us", "values": ["2", "5", "7"]},
    ]


def test_csv_and_xlsx_carry_the_same_rows(acme, client_a):
    response = client_a.get(f"{REPORTS}download/csv/", GROUPED)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="usage-acme-2027-04-01-2027-04-03-day.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        ["period_start", "period (Europe/Berlin)", "meter", "group", "value"],
        ["2027-04-01T00:00:00+02:00", "Thu 1 Apr 2027", "calls", "eu", "3"],
        ["2027-04-01T00:00:00+02:00", "Thu 1 Apr 2027", "calls", "us", "2"],
        ["2027-04-02T00:00:00+02:00", "Fri 2 Apr 2027", "calls", "eu", "5"],
        ["2027-04-02T00:00:00+02:00", "Fri 2 Apr 2027", "calls", "us", "5"],
        ["2027-04-03T00:00:00+02:00", "Sat 3 Apr 2027", "calls", "eu", "8"],
        ["2027-04-03T00:00:00+02:00", "Sat 3 Apr 2027", "calls", "us", "7"],
    ]
    xlsx = client_a.get(f"{REPORTS}download/xlsx/", GROUPED)
    assert xlsx.status_code == 200
    assert xlsx["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == [
        ["period start (Europe/Berlin)", "meter", "group", "value"],
        [datetime(2027, 4, 1), "calls", "eu", 3],
        [datetime(2027, 4, 1), "calls", "us", 2],
        [datetime(2027, 4, 2), "calls", "eu", 5],
        [datetime(2027, 4, 2), "calls", "us", 5],
        [datetime(2027, 4, 3), "calls", "eu", 8],
        [datetime(2027, 4, 3), "calls", "us", 7],
    ]


def test_an_ungrouped_meter_is_one_statement_over_the_buckets_bounds(acme, client_a):
    """The same figures as a statement per bucket, in one statement (metering's bounds)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.reports import ReportSpec, report_build, report_cells

    org = acme["organization"]
    spec = ReportSpec(start="2027-04-01", end="2027-05-01", meters=["calls"], group_by="", granularity="hour")
    assert report_cells(spec=spec, zone=BERLIN) == 1  # 744 hours: one statement
    days = ReportSpec(start="2027-03-01", end="2027-04-30", meters=["calls"], group_by="", granularity="day")
    assert report_cells(spec=days, zone=BERLIN) == 1  # 61 days: one statement too
    seen = []
    with CaptureQueriesContext(connection) as queries:
        bounded = report_build(organization=org, spec=days, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 1)]
    assert len([q for q in queries.captured_queries if "width_bucket" in q["sql"]]) == 1
    with mock.patch("portal.reports._mode", return_value="each"):
        one_by_one = report_build(organization=org, spec=days)
    assert [(r.bucket.start, r.value) for r in bounded.rows] == [(r.bucket.start, r.value) for r in one_by_one.rows]
    assert sum(r.value for r in bounded.rows) == 140 and len(bounded.rows) == 61


def test_hours_and_months_are_local(acme, client_a):
    hours = client_a.get(
        f"{REPORTS}download/csv/",
        {"start": "2027-04-01", "end": "2027-04-01", "meters": "calls", "granularity": "hour"},
    )
    rows = list(csv.reader(io.StringIO(hours.content.decode())))[1:]
    assert len(rows) == 24 and rows[0][0] == "2027-04-01T00:00:00+02:00" and rows[23][0] == "2027-04-01T23:00:00+02:00"
    # the 1st's 5 calls are at 12:00-12:04 Berlin time
    assert [(r[0][11:16], r[3]) for r in rows if r[3] != "0"] == [("12:00", "5")]
    months = client_a.get(
        f"{REPORTS}download/csv/",
        {"start": "2027-03-01", "end": "2027-04-30", "meters": "calls", "granularity": "month"},
    )
    assert list(csv.reader(io.StringIO(months.content.decode())))[1:] == [
        ["2027-03-01T00:00:00+01:00", "Mar 2027", "calls", "0"],
        ["2027-04-01T00:00:00+02:00", "Apr 2027", "calls", "140"],  # every call so far
    ]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({**GROUPED, "end": "2027-03-31"}, "end", "The last day must not be before the first."),
        ({**GROUPED, "meters": "nope"}, "meters", "Select a valid choice. nope is not one of the available choices."),
        (
            {**GROUPED, "granularity": "hour", "end": "2027-05-02"},
            "end",
            "A report by hour covers at most 31 days: shorten the range or choose a coarser granularity.",
        ),
        ({**GROUPED, "start": "2027-13-45"}, "start", "Enter a valid date."),
        (
            {**GROUPED, "group_by": "plan"},
            "group_by",
            "Select a valid choice. plan is not one of the available choices.",
        ),
        ({**GROUPED, "granularity": "week"}, "granularity", "Select a valid choice."),
    ],
)
def test_invalid_queries_are_form_errors(acme, client_a, query, field, message):
    for url in (REPORTS, f"{REPORTS}download/csv/"):
        page = text(client_a.get(url, query), status=400)
        assert f'data-error="{field}">' in page
        assert message in page
        assert "data-report>" not in page
    assert ReportExport.objects.count() == 0


def test_a_large_report_is_built_by_the_task_with_progress(acme, client_a, django_capture_on_commit_callbacks):
    # by hour and region: a statement per hour (a grouped meter is not folded from a series)
    query = {"start": "2027-04-01", "end": "2027-05-01", "meters": "calls", "granularity": "hour", "group_by": "region"}
    page = text(client_a.get(REPORTS, query))
    assert "This report reads 744 figures" in page and "data-report>" not in page
    assert client_a.get(f"{REPORTS}download/csv/", query).status_code == 400  # not in the request
    with mock.patch("portal.tasks.report_export_run.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            response = client_a.post(f"{REPORTS}exports/", query)
    export = ReportExport.objects.get()
    delay.assert_called_once_with(export.pk)  # on commit
    assert response.status_code == 302 and response["Location"] == f"{REPORTS}exports/{export.pk}/"
    assert (export.status, export.total, export.spec["meters"]) == ("pending", 744, ["calls"])
    assert export.requested_by == acme["user"]
    progress = text(client_a.get(response["Location"], HTTP_HX_REQUEST="true"))
    assert 'data-export-status="pending"' in progress and 'hx-trigger="every 1s"' in progress
    assert "Download CSV" not in progress

    assert report_export_run(export_id=export.pk) == "done"
    assert report_export_run(export_id=export.pk) == "skipped"  # idempotent
    export.refresh_from_db()
    # a row per hour and region with calls: 14 Berlin noons x (eu, us), and today's five eu calls
    # at 09:56-10:00 Berlin time in two hours
    assert (export.status, export.done, export.rows, export.percent) == ("done", 744, 30, 100)
    ready = text(client_a.get(response["Location"], HTTP_HX_REQUEST="true"))
    assert "hx-trigger" not in ready and "30 rows" in ready and "1 Apr 2027 to 1 May 2027, by hour" in ready
    download = client_a.get(f"{REPORTS}exports/{export.pk}/csv/")
    rows = list(csv.reader(io.StringIO(download.content.decode())))[1:]
    assert len(rows) == 30 and sum(Decimal(r[4]) for r in rows) == 140
    assert rows[:2] == [
        ["2027-04-01T12:00:00+02:00", "Thu 1 Apr 2027 12:00", "calls", "eu", "3"],
        ["2027-04-01T12:00:00+02:00", "Thu 1 Apr 2027 12:00", "calls", "us", "2"],
    ]
    assert rows[-2:] == [
        ["2027-04-15T09:00:00+02:00", "Thu 15 Apr 2027 09:00", "calls", "eu", "4"],
        ["2027-04-15T10:00:00+02:00", "Thu 15 Apr 2027 10:00", "calls", "eu", "1"],
    ]
    sheet = load_workbook(io.BytesIO(client_a.get(f"{REPORTS}exports/{export.pk}/xlsx/").content)).active
    assert sheet.max_row == 31


def test_another_organizations_report_and_exports_are_404(acme, client_a):
    other = OrganizationFactory(external_id="other", name="Other Secret", timezone="UTC")
    MembershipFactory(organization=other)
    foreign = ReportExport.objects.create(organization=other, spec=GROUPED | {"meters": ["calls"]}, status="done")
    for url in (
        "/organizations/other/reports/",
        "/organizations/other/reports/download/csv/?start=2027-04-01&end=2027-04-01&meters=calls&granularity=day",
        "/organizations/other/reports/statement/?month=2027-04",
        f"/organizations/other/reports/exports/{foreign.pk}/",
        f"/organizations/other/reports/exports/{foreign.pk}/csv/",
        f"{REPORTS}exports/{foreign.pk}/",
        f"{REPORTS}exports/{foreign.pk}/csv/",
    ):
        response = client_a.get(url)
        assert response.status_code == 404, url
        assert b"Other Secret" not in response.content
    assert client_a.post("/organizations/other/reports/exports/", GROUPED).status_code == 404
    assert ReportExport.objects.count() == 1
    assert "/exports/" not in text(client_a.get(REPORTS))  # not listed either


def test_monthly_statement_pdf(acme, client_a):
    response = client_a.get(f"{REPORTS}statement/", {"month": "2027-04"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="statement-acme-2027-04.pdf"'
    content = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    invoice = acme["invoice"]
    assert "Statement for April 2027" in content
    assert f"Invoice {invoice.number}" in content and "1 Apr 2027" in content  # issued 00:05 Berlin
    assert "Invoiced €10.00" in content and "API calls 140" in content
    for month in ("2027-05", "2027-4", "nope", ""):
        page = text(client_a.get(f"{REPORTS}statement/", {"month": month}), status=400)
        assert "Choose a month (YYYY-MM) that has begun." in page


def test_a_meter_split_by_two_properties_is_folded_to_the_one_chosen(acme, client_a):
    from tests.factories import MeterFactory
    from tests.portal.scenario import store_events

    MeterFactory(code="calls_tiered", name="Tiered calls", event_type="call", group_by=["region", "tier"])
    MeterFactory(
        code="users",
        name="Users",
        event_type="call",
        aggregation="unique_count",
        value_property="user",
        group_by=["region", "tier"],
    )
    at = datetime(2027, 4, 2, 10, 0, tzinfo=UTC)
    store_events(
        "acme",
        [
            ("t1", at, {"region": "eu", "tier": "a", "user": "u1"}),
            ("t2", at, {"region": "eu", "tier": "b", "user": "u1"}),
            ("t3", at, {"region": "us", "tier": "a", "user": "u2"}),
        ],
    )
    query = {
        "start": "2027-04-02",
        "end": "2027-04-02",
        "meters": "calls_tiered",
        "granularity": "day",
        "group_by": "region",
    }
    rows = list(csv.reader(io.StringIO(client_a.get(f"{REPORTS}download/csv/", query).content.decode())))
    # the meter counts the events drained after it was made (no worker runs its backfill here):
    # eu is tiers a and b together
    assert [r[3:] for r in rows[1:]] == [["eu", "2"], ["us", "1"]]
    # distinct counts do not add up across tiers: refused, not summed
    page = text(client_a.get(REPORTS, {**query, "meters": "users"}), status=400)
    assert "Users (count of distinct values) is split by region, tier and cannot be grouped by region alone." in page
