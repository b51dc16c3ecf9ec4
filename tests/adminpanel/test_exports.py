"""Accounting exports as background tasks (issue 14, item 5): the small tenant of
tests/adminpanel/test_journal.py (Acme's April 2027: a 119.00 EUR invoice with German VAT, paid,
60.00 + VAT credited and refunded, 40.00 recognized at the month's end) exported through the staff
page in QuickBooks Online's and Xero's journal layouts and as invoices, lines, payments and
customers; headers and rows exact, every entry balanced; the task's progress and files, the
downloads and their audit entries; refusals store and queue nothing."""

import csv
import io
from collections import defaultdict
from datetime import date
from decimal import Decimal
from unittest import mock

import pytest
from auditlog.models import LogEntry
from openpyxl import load_workbook

from adminpanel.exports import (
    CUSTOMER_COLUMNS,
    INVOICE_COLUMNS,
    LINE_COLUMNS,
    PAYMENT_COLUMNS,
    Spec,
    accounting_export_run,
)
from adminpanel.journal import QBO_COLUMNS, XERO_COLUMNS
from invoicing.models import AccountingExport
from tests.adminpanel.test_journal import april  # noqa: F401 (a fixture)
from tests.invoicing.test_unused_time_credit import plans  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("plans")]
PAGE, NEW = "/staff/exports/", "/staff/exports/new/"
APRIL = {"start": "2027-04-01", "end": "2027-04-30"}


@pytest.fixture
def built(client_a, django_capture_on_commit_callbacks):
    return lambda kind, **fields: build(client_a, django_capture_on_commit_callbacks, kind, **fields)


def build(client, on_commit, kind: str, **fields) -> AccountingExport:
    """Ask for the export on the page (the task queued once the row is committed), then run the
    task as the worker would."""
    with mock.patch("adminpanel.tasks.accounting_export_run_task.delay") as delay, on_commit(execute=True):
        response = client.post(NEW, {"kind": kind, **APRIL, **fields})
    assert (response.status_code, response["Location"]) == (302, PAGE)
    export = AccountingExport.objects.get()
    delay.assert_called_once_with(export.pk)
    assert accounting_export_run(export_id=export.pk) == "done"
    assert accounting_export_run(export_id=export.pk) == "skipped"  # claimed once
    export.refresh_from_db()
    return export


def downloaded(client, export: AccountingExport, fmt: str = "csv"):
    response = client.get(f"{PAGE}{export.pk}/{fmt}/")
    assert response.status_code == 200
    return response


def rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_journal_in_quickbooks_online_layout(april, client_a, staff, built):  # noqa: F811
    invoice, payment, note, refund = april
    user = staff("finance")
    export = built("journal_qbo", currency="eur")
    assert (export.status, export.rows, export.done, export.total, export.percent) == ("done", 12, 7, 7, 100)
    assert export.spec == {"from": "2027-04-01", "to": "2027-04-30", "currency": "EUR", "tax_rate": ""}
    response = downloaded(client_a, export)
    assert response["Content-Disposition"] == 'attachment; filename="journal_qbo-2027-04-01-2027-04-30-EUR.csv"'
    body = rows(response)
    i, n, p, r = invoice.number, note.number, payment.pk, refund.pk
    refunded = "Refund of credit on the balance"
    assert body[0] == QBO_COLUMNS
    assert QBO_COLUMNS == ["Journal No.", "Journal Date", "Account Name", "Debits", "Credits", "Description", "Name"]
    assert body[1:] == [
        [i, "04/01/2027", "Accounts receivable", "119.00", "", "Invoice finalized", "Acme GmbH"],
        [i, "04/01/2027", "Deferred revenue", "", "100.00", "Invoice finalized", "Acme GmbH"],
        [i, "04/01/2027", "Sales tax / VAT payable", "", "19.00", "Invoice finalized", "Acme GmbH"],
        [f"PAY-{p}", "04/02/2027", "Payment clearing", "119.00", "", "stripe payment", "Acme GmbH"],
        [f"PAY-{p}", "04/02/2027", "Accounts receivable", "", "119.00", "stripe payment", "Acme GmbH"],
        [n, "04/10/2027", "Deferred revenue", "60.00", "", f"Credit note on {i}: goodwill", "Acme GmbH"],
        [n, "04/10/2027", "Sales tax / VAT payable", "11.40", "", f"Credit note on {i}: goodwill", "Acme GmbH"],
        [n, "04/10/2027", "Customer credit balances", "", "71.40", f"Credit note on {i}: goodwill", "Acme GmbH"],
        [f"REF-{r}", "04/20/2027", "Customer credit balances", "71.40", "", refunded, "Acme GmbH"],
        [f"REF-{r}", "04/20/2027", "Payment clearing", "", "71.40", refunded, "Acme GmbH"],
        ["REV-2027-04-R", "04/30/2027", "Deferred revenue", "40.00", "", "Revenue recognized (ratable)", ""],
        ["REV-2027-04-R", "04/30/2027", "Subscription revenue", "", "40.00", "Revenue recognized (ratable)", ""],
    ]
    balance = defaultdict(Decimal)
    for number, _, _, debit, credit, *_ in body[1:]:
        balance[number] += Decimal(debit or 0) - Decimal(credit or 0)
    assert set(balance.values()) == {Decimal(0)} and len(balance) == 5  # every entry balanced
    # the XLSX: the same rows, the amounts as numbers (empty when the other side)
    sheet = load_workbook(io.BytesIO(downloaded(client_a, export, "xlsx").content)).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == QBO_COLUMNS
    assert cells[1][:5] == [i, "04/01/2027", "Accounts receivable", 119, None]
    assert [[("" if v is None else f"{v:.2f}" if k in (3, 4) else v) for k, v in enumerate(c)] for c in cells[1:]] == [
        [*b[:6], b[6] or ""] for b in body[1:]
    ]
    # requested and downloaded twice: three audit entries, the requester's
    events = LogEntry.objects.get_for_object(export).order_by("pk")
    assert [(e.changes["event"][1], e.actor_id) for e in events] == [
        ("export.requested", user.pk),
        ("export.downloaded", user.pk),
        ("export.downloaded", user.pk),
    ]
    assert [e.changes["format"][1] for e in events[1:]] == ["csv", "xlsx"]


def test_the_journal_in_xero_layout(april, client_a, staff, built):  # noqa: F811
    invoice, payment, note, refund = april
    staff("finance")
    export = built("journal_xero", currency="EUR", tax_rate="No VAT")
    body = rows(downloaded(client_a, export))
    i, n, p, r = invoice.number, note.number, payment.pk, refund.pk
    assert (
        body[0]
        == XERO_COLUMNS
        == [
            "Narration",
            "Date",
            "Description",
            "AccountCode",
            "TaxRate",
            "Amount",
            "TrackingName1",
            "TrackingOption1",
            "TrackingName2",
            "TrackingOption2",
        ]
    )
    acme, none = "Acme GmbH (acme)", ["", "", "", ""]
    assert body[1:] == [
        [f"invoice-{i}: Invoice finalized", "01/04/2027", acme, "1200", "No VAT", "119.00", *none],
        [f"invoice-{i}: Invoice finalized", "01/04/2027", acme, "2400", "No VAT", "-100.00", *none],
        [f"invoice-{i}: Invoice finalized", "01/04/2027", acme, "2200", "No VAT", "-19.00", *none],
        [f"payment-{p}: stripe payment", "02/04/2027", acme, "1010", "No VAT", "119.00", *none],
        [f"payment-{p}: stripe payment", "02/04/2027", acme, "1200", "No VAT", "-119.00", *none],
        [f"credit_note-{n}: Credit note on {i}: goodwill", "10/04/2027", acme, "2400", "No VAT", "60.00", *none],
        [f"credit_note-{n}: Credit note on {i}: goodwill", "10/04/2027", acme, "2200", "No VAT", "11.40", *none],
        [f"credit_note-{n}: Credit note on {i}: goodwill", "10/04/2027", acme, "2300", "No VAT", "-71.40", *none],
        [f"refund-{r}: Refund of credit on the balance", "20/04/2027", acme, "2300", "No VAT", "71.40", *none],
        [f"refund-{r}: Refund of credit on the balance", "20/04/2027", acme, "1010", "No VAT", "-71.40", *none],
        [
            "recognition-2027-04-EUR-ratable: Revenue recognized (ratable)",
            "30/04/2027",
            "Deferred revenue",
            "2400",
            "No VAT",
            "40.00",
            *none,
        ],
        [
            "recognition-2027-04-EUR-ratable: Revenue recognized (ratable)",
            "30/04/2027",
            "Subscription revenue",
            "4000",
            "No VAT",
            "-40.00",
            *none,
        ],
    ]
    journals = defaultdict(Decimal)  # Xero groups a journal's lines by narration and date
    for narration, day, _, _, _, amount, *_ in body[1:]:
        journals[narration, day] += Decimal(amount)
    assert set(journals.values()) == {Decimal(0)} and len(journals) == 5


def test_invoices_lines_payments_and_customers(april, client_a, staff, built):  # noqa: F811
    invoice, payment, _, _ = april
    org = invoice.organization
    staff("admin")
    exported = {}
    for kind in ("invoices", "invoice_lines", "payments", "customers"):
        export = built(kind)
        exported[kind] = rows(downloaded(client_a, export))
        AccountingExport.objects.all().delete()
    assert exported["invoices"] == [
        INVOICE_COLUMNS,
        [
            invoice.number,
            "paid",
            "acme",
            "Acme GmbH",
            "EUR",
            "2027-04-01",
            invoice.due_at.date().isoformat(),
            "2027-04-01T00:00:00",
            "2027-05-01T00:00:00",
            "100.00",
            "19.00",
            "119.00",
            "0.00",
            "119.00",
            "0.00",
            "2027-04-02",
            "",
        ],
    ]
    line = invoice.lines.get()
    assert exported["invoice_lines"] == [
        LINE_COLUMNS,
        [
            invoice.number,
            str(line.position),
            "base_fee",
            line.description,
            "EUR",
            "1",
            "100",
            "100.00",
            "100.00",
            "19.00",
            "19",
            "DE",
            "",
            "2027-04-01T00:00:00",
            "2027-05-01T00:00:00",
        ],
    ]
    assert exported["payments"] == [
        PAYMENT_COLUMNS,
        [str(payment.pk), "2027-04-02", invoice.number, "acme", "Acme GmbH", "stripe", "", "", "EUR", "119.00", "0.00"],
    ]
    created = str(org.created_at.date())
    assert exported["customers"] == [
        CUSTOMER_COLUMNS,
        [
            "acme",
            "Acme GmbH",
            org.billing_email,
            "EUR",
            "DE",
            *[""] * 6,
            "no",
            "UTC",
            "active",
            created,
        ],
    ]


def test_the_same_period_gives_the_same_file(april, client_a, staff, built):  # noqa: F811
    staff("finance")
    first = downloaded(client_a, built("journal")).content
    AccountingExport.objects.all().delete()
    assert downloaded(client_a, built("journal")).content == first


@pytest.mark.parametrize(
    ("role", "fields", "status"),
    [
        ("viewer", {"kind": "invoices", **APRIL}, 403),
        ("support", {"kind": "invoices", **APRIL}, 403),
        ("finance", {"kind": "invoices", "start": "2027-04-30", "end": "2027-04-01"}, 400),
        ("finance", {"kind": "invoices", "start": "2026-01-01", "end": "2027-04-30"}, 400),  # over a year
        ("finance", {"kind": "invoices", "start": "april", "end": "2027-04-30"}, 400),
        ("finance", {"kind": "ledger", **APRIL}, 400),
        ("finance", {"kind": "journal_qbo", **APRIL}, 400),  # no currency
        ("finance", {"kind": "journal_xero", "currency": "EUR", "tax_rate": " ", **APRIL}, 400),
        ("finance", {"kind": "journal", "currency": "EUX", **APRIL}, 400),
    ],
)
def test_refused_requests_store_and_queue_nothing(client_a, staff, role, fields, status):
    staff(role)
    before = LogEntry.objects.count()
    with mock.patch("adminpanel.tasks.accounting_export_run_task.delay") as delay:
        assert client_a.post(NEW, fields).status_code == status
    assert (AccountingExport.objects.count(), LogEntry.objects.count(), delay.call_count) == (0, before, 0)


def test_progress_and_downloads_before_it_is_ready(client_a, staff):
    staff("viewer")
    export = AccountingExport.objects.create(kind="invoices", spec={"from": "2027-04-01", "to": "2027-04-30"})
    AccountingExport.objects.filter(pk=export.pk).update(status="running", done=250, total=1000)
    page = client_a.get(f"{PAGE}{export.pk}/").content.decode()
    assert 'data-export-status="running"' in page and 'hx-trigger="every 1s"' in page
    assert '<progress value="25" max="100"' in page
    before = LogEntry.objects.count()
    assert client_a.get(f"{PAGE}{export.pk}/csv/").status_code == 404  # not built yet
    assert LogEntry.objects.count() == before
    assert client_a.get(PAGE).status_code == 200
    assert client_a.get(f"{PAGE}{export.pk + 1}/").status_code == 404


def test_a_failed_build_is_recorded(client_a, staff):
    staff("finance")
    export = AccountingExport.objects.create(kind="invoices", spec=Spec(date(2027, 4, 1), date(2027, 4, 30)).as_json())
    with mock.patch("adminpanel.exports.export_files", side_effect=RuntimeError("disk full")):
        assert accounting_export_run(export_id=export.pk) == "failed"
    export.refresh_from_db()
    assert (export.status, export.error, bool(export.csv), bool(export.xlsx)) == ("failed", "disk full", False, False)
    assert client_a.get(f"{PAGE}{export.pk}/csv/").status_code == 404
