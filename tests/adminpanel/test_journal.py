"""Accounting exports (issue 14, item 5): the journal of a period as CSV and XLSX, balanced, with
the tenant's account map over the defaults; refusals write nothing.

Flat 100.00 EUR a month with German VAT (19 %): Acme's April invoice 119.00 on April 1st 2027,
paid on the 2nd, 60.00 credited on the 10th (71.40 with VAT, to the balance: it was paid) and
refunded on the 20th; 40.00 of April's fee is left to recognize in April, on its last day (the
schedule's grain is the month, dated its last day)."""

import csv
import io
from decimal import Decimal

import pytest
import time_machine
from openpyxl import load_workbook

from adminpanel.journal import COLUMNS, DEFAULT_ACCOUNTS
from invoicing.models import AccountMap, Invoice, InvoicingSettings
from invoicing.services.invoice import CreditNoteLineInput, credit_note_create
from payments.models import Payment, Refund
from tests.helpers import utc
from tests.invoicing.test_unused_time_credit import april_billed, plans  # noqa: F401 (plans is a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("plans")]
CSV, XLSX, ACCOUNTS = "/staff/revenue/journal.csv", "/staff/revenue/journal.xlsx", "/staff/revenue/accounts/"
APRIL = {"from": "2027-04-01", "to": "2027-04-30"}


@pytest.fixture
def april():
    InvoicingSettings.objects.filter(pk=1).update(seller_country="DE", tax_registrations=["DE"])
    org, _, invoice = april_billed()
    payment = Payment.objects.create(
        invoice=invoice,
        organization=org,
        number=1,
        idempotency_key="pay-1",
        gateway="stripe",
        amount=Decimal("119.00"),
        currency="EUR",
        status="succeeded",
        applied_at=utc(2027, 4, 2),
    )
    # what applying the payment does (payments.services), here without a gateway
    Invoice.objects.filter(pk=invoice.pk).update(
        status="paid", amount_paid=Decimal("119.00"), amount_due=0, paid_at=utc(2027, 4, 2)
    )
    invoice.refresh_from_db()
    line = invoice.lines.get(kind="base_fee")
    note = credit_note_create(
        actor=None,
        invoice=invoice,
        reason="goodwill",
        lines=[CreditNoteLineInput(line.pk, Decimal("60.00"))],
        at=utc(2027, 4, 10),
    )
    with time_machine.travel(utc(2027, 4, 20), tick=False):
        refund = Refund.objects.create(
            payment=payment,
            credit_note=note,
            amount=Decimal("71.40"),
            currency="EUR",
            idempotency_key="ref-1",
            status="succeeded",
        )
    return invoice, payment, note, refund


def rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))


def test_the_journal_of_a_period(april, client_a, staff):
    invoice, payment, note, refund = april
    staff("viewer")
    response = client_a.get(CSV, APRIL)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="journal-2027-04-01-2027-04-30.csv"'
    body = rows(b"".join(response.streaming_content))
    i, n, p, r = invoice.number, note.number, payment.pk, refund.pk
    # entry, date, journal, document, account, debit, credit
    assert [(*row[:4], row[5], row[7], row[8]) for row in body[1:]] == [
        (f"invoice-{i}", "2027-04-01", "invoice", i, "1200", "119.00", "0.00"),
        (f"invoice-{i}", "2027-04-01", "invoice", i, "2400", "0.00", "100.00"),
        (f"invoice-{i}", "2027-04-01", "invoice", i, "2200", "0.00", "19.00"),
        (f"payment-{p}", "2027-04-02", "payment", i, "1010", "119.00", "0.00"),
        (f"payment-{p}", "2027-04-02", "payment", i, "1200", "0.00", "119.00"),
        (f"credit_note-{n}", "2027-04-10", "credit_note", n, "2400", "60.00", "0.00"),
        (f"credit_note-{n}", "2027-04-10", "credit_note", n, "2200", "11.40", "0.00"),
        (f"credit_note-{n}", "2027-04-10", "credit_note", n, "2300", "0.00", "71.40"),
        (f"refund-{r}", "2027-04-20", "refund", n, "2300", "71.40", "0.00"),
        (f"refund-{r}", "2027-04-20", "refund", n, "1010", "0.00", "71.40"),
        ("recognition-2027-04-EUR-ratable", "2027-04-30", "recognition", "2027-04", "2400", "40.00", "0.00"),
        ("recognition-2027-04-EUR-ratable", "2027-04-30", "recognition", "2027-04", "4000", "0.00", "40.00"),
    ]
    assert {row[0]: (row[4], row[9], row[10]) for row in body[1:]} == {
        f"invoice-{i}": ("acme", "EUR", "Invoice finalized"),
        f"payment-{p}": ("acme", "EUR", "stripe payment"),
        f"credit_note-{n}": ("acme", "EUR", f"Credit note on {i}: goodwill"),
        f"refund-{r}": ("acme", "EUR", "Refund of credit on the balance"),
        "recognition-2027-04-EUR-ratable": ("", "EUR", "Revenue recognized (ratable)"),
    }
    names = {row[5]: row[6] for row in body[1:]}
    assert names == {code: name for code, name in DEFAULT_ACCOUNTS.values() if code in names}
    # the XLSX holds the same rows, amounts as numbers and dates as dates
    sheet = load_workbook(io.BytesIO(client_a.get(XLSX, APRIL).content)).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == COLUMNS
    assert [[str(v.date()) if k == 1 else "" if v is None else v for k, v in enumerate(r)] for r in cells[1:]] == [
        [*r[:7], float(r[7]), float(r[8]), *r[9:]] for r in body[1:]
    ]


def test_a_period_outside_leaves_the_entries_out(april, client_a, staff):
    staff("viewer")
    body = rows(b"".join(client_a.get(CSV, {"from": "2027-04-03", "to": "2027-04-09"}).streaming_content))
    assert body[1:] == []  # April's recognition is dated April 30th, outside
    body = rows(b"".join(client_a.get(CSV, {"from": "2027-04-21", "to": "2027-04-30"}).streaming_content))
    assert [(r[0], r[1], r[7], r[8]) for r in body[1:]] == [
        ("recognition-2027-04-EUR-ratable", "2027-04-30", "40.00", "0.00"),
        ("recognition-2027-04-EUR-ratable", "2027-04-30", "0.00", "40.00"),
    ]


@pytest.mark.parametrize(
    "query", [{}, {"from": "2027-04-30", "to": "2027-04-01"}, {"from": "april", "to": "2027-04-30"}]
)
def test_a_malformed_period_is_a_400(april, client_a, staff, query):
    staff("viewer")
    assert client_a.get(CSV, query).status_code == 400
    assert client_a.get(XLSX, query).status_code == 400


def posted(**changes) -> dict:
    body = {
        f"{role}_{part}": value
        for role, (code, name) in DEFAULT_ACCOUNTS.items()
        for part, value in (("code", code), ("name", name))
    }
    return {**body, **changes}


def test_finance_sets_the_account_map_and_the_journal_uses_it(april, client_a, staff):
    staff("finance")
    response = client_a.post(ACCOUNTS, posted(receivable_code="120000", receivable_name="Debtors"))
    assert (response.status_code, response["Location"]) == (302, "/staff/revenue/")
    body = rows(b"".join(client_a.get(CSV, APRIL).streaming_content))
    assert body[1][5:9] == ["120000", "Debtors", "119.00", "0.00"]
    assert AccountMap.objects.get().accounts["receivable"] == {"code": "120000", "name": "Debtors"}


@pytest.mark.parametrize(
    ("role", "body", "status"),
    [("viewer", posted(), 403), ("support", posted(), 403), ("finance", posted(cash_code=""), 400)],
)
def test_refused_account_maps_write_nothing(april, client_a, staff, role, body, status):
    staff(role)
    assert client_a.post(ACCOUNTS, body).status_code == status
    assert not AccountMap.objects.exists()


def test_an_invoice_written_off_outside_dunning_is_a_balanced_write_off_entry():
    """Staff or the API mark an open invoice uncollectible (no dunning case): the journal books
    what it still owed to bad debt on that day, against receivables; outside the period, nothing."""
    from datetime import date

    from adminpanel.journal import journal_lines
    from invoicing.services.invoice import invoice_mark_uncollectible

    InvoicingSettings.objects.filter(pk=1).update(seller_country="DE", tax_registrations=["DE"])
    _, _, invoice = april_billed()
    invoice_mark_uncollectible(actor=None, invoice=invoice, at=utc(2027, 4, 20, 9))
    lines = [line for line in journal_lines(date(2027, 4, 1), date(2027, 4, 30)) if line.journal == "write_off"]
    assert [(x.entry_id, x.date, x.account_code, x.debit, x.credit) for x in lines] == [
        (f"write_off-{invoice.number}", date(2027, 4, 20), DEFAULT_ACCOUNTS["bad_debt"][0], Decimal("119.00"), 0),
        (f"write_off-{invoice.number}", date(2027, 4, 20), DEFAULT_ACCOUNTS["receivable"][0], 0, Decimal("119.00")),
    ]
    may = journal_lines(date(2027, 5, 1), date(2027, 5, 31))
    assert [line for line in may if line.journal == "write_off"] == []
