"""Accounting exports (issue 14, item 5): journal entries for a period, as CSV and XLSX.

Here, above payments and dunning, because the journal reads payments, refunds and write-offs as
well as invoices, credit notes and the recognition rows (invoicing.RevenueEntry). Every entry is
balanced (its debits equal its credits, per currency) by construction: each posts one amount to
two or more accounts. The layout and the default accounts are documented in docs/revenue.md.

Revenue is booked through deferred revenue: an invoice credits `deferred_revenue` with its net
amount and the recognition entries move it to revenue month by month, so a balance of
`deferred_revenue` is revenue billed and not yet earned (negative: earned, not yet billed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncMonth

from core.money import round_money
from core.tabular import csv_bytes, xlsx_bytes
from invoicing.models import AccountMap, CreditNote, Invoice, InvoiceStatus, RevenueEntry
from payments.models import Payment, PaymentStatus, Refund

# role -> (code, name): what a tenant's map falls back to.
DEFAULT_ACCOUNTS: dict[str, tuple[str, str]] = {
    "cash": ("1010", "Payment clearing"),
    "receivable": ("1200", "Accounts receivable"),
    "tax_payable": ("2200", "Sales tax / VAT payable"),
    "customer_credit": ("2300", "Customer credit balances"),
    "deferred_revenue": ("2400", "Deferred revenue"),
    "revenue_ratable": ("4000", "Subscription revenue"),
    "revenue_usage": ("4100", "Usage revenue"),
    "revenue_point": ("4200", "Other revenue"),
    "bad_debt": ("6100", "Bad debt expense"),
}
COLUMNS = [
    "entry_id",
    "date",
    "journal",
    "document",
    "customer",
    "account_code",
    "account_name",
    "debit",
    "credit",
    "currency",
    "memo",
]


@dataclass(frozen=True)
class JournalLine:
    entry_id: str
    date: date
    journal: str
    document: str
    customer: str
    account_code: str
    account_name: str
    debit: Decimal
    credit: Decimal
    currency: str
    memo: str
    customer_name: str = ""  # the organization's name (QuickBooks' Name column)


def accounts_get() -> dict[str, tuple[str, str]]:
    """The tenant's map over the defaults."""
    stored = AccountMap.objects.first()
    accounts = dict(DEFAULT_ACCOUNTS)
    for role, value in (stored.accounts if stored else {}).items():
        if role in accounts and isinstance(value, dict):
            accounts[role] = (str(value.get("code", "")), str(value.get("name", "")))
    return accounts


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time.min, tzinfo=UTC), datetime.combine(
        end + timedelta(days=1), time.min, tzinfo=UTC
    )


class _Entries:
    def __init__(self, accounts: dict[str, tuple[str, str]]) -> None:
        self.accounts, self.lines = accounts, []

    def entry(self, entry_id, day, journal, document, organization, currency, memo, postings) -> None:
        """`postings`: (role, signed amount), positive a debit; zero amounts are left out.
        `organization`: the customer, None for recognition (summed over customers)."""
        customer, customer_name = (organization.external_id, organization.name) if organization else ("", "")
        for role, amount in postings:
            if amount == 0:
                continue
            amount = round_money(amount, currency)
            code, name = self.accounts[role]
            debit, credit = (amount, Decimal(0)) if amount > 0 else (Decimal(0), -amount)
            self.lines.append(
                JournalLine(
                    entry_id,
                    day,
                    journal,
                    document,
                    customer,
                    code,
                    name,
                    round_money(debit, currency),
                    round_money(credit, currency),
                    currency,
                    memo,
                    customer_name,
                )
            )


JOURNAL_STEPS = 7  # the sources read, for an export's progress


def journal_lines(
    start: date, end: date, *, currency: str = "", progress: Callable[[int, int], None] | None = None
) -> list[JournalLine]:
    """Every journal line dated in [start, end] (UTC days), by date then entry; only `currency`'s
    when given. `progress(done, JOURNAL_STEPS)` after each source."""
    since, until = period_bounds(start, end)
    step = iter(range(1, JOURNAL_STEPS + 1))

    def advance() -> None:
        if progress is not None:
            progress(next(step), JOURNAL_STEPS)

    out = _Entries(accounts_get())
    invoices = Invoice.objects.exclude(status=InvoiceStatus.DRAFT).select_related("organization")
    for i in invoices.filter(issued_at__gte=since, issued_at__lt=until):
        out.entry(
            f"invoice-{i.number}",
            i.issued_at.astimezone(UTC).date(),
            "invoice",
            i.number,
            i.organization,
            i.currency,
            "Invoice finalized",
            [
                ("receivable", i.total),
                ("deferred_revenue", -i.subtotal),
                ("tax_payable", -i.tax_total),
                ("customer_credit", i.credits_applied),
                ("receivable", -i.credits_applied),
            ],
        )
    advance()
    for i in invoices.filter(status=InvoiceStatus.VOID, voided_at__gte=since, voided_at__lt=until):
        out.entry(
            f"void-{i.number}",
            i.voided_at.astimezone(UTC).date(),
            "void",
            i.number,
            i.organization,
            i.currency,
            "Invoice voided",
            [
                ("receivable", -i.total),
                ("deferred_revenue", i.subtotal),
                ("tax_payable", i.tax_total),
                ("receivable", i.credits_applied),
                ("customer_credit", -i.credits_applied),
            ],
        )
    advance()
    notes = CreditNote.objects.filter(created_at__gte=since, created_at__lt=until).select_related(
        "invoice__organization"
    )
    for n in notes:
        out.entry(
            f"credit_note-{n.number}",
            n.created_at.astimezone(UTC).date(),
            "credit_note",
            n.number,
            n.invoice.organization,
            n.currency,
            f"Credit note on {n.invoice.number}: {n.reason}"[:200],
            [
                ("deferred_revenue", n.subtotal),
                ("tax_payable", n.tax_total),
                ("receivable", -n.applied_to_invoice),
                ("customer_credit", -n.credited_to_balance),
            ],
        )
    advance()
    payments = Payment.objects.filter(
        status=PaymentStatus.SUCCEEDED, applied_at__gte=since, applied_at__lt=until
    ).select_related("invoice", "organization")
    for p in payments:
        out.entry(
            f"payment-{p.pk}",
            p.applied_at.astimezone(UTC).date(),
            "payment",
            p.invoice.number,
            p.organization,
            p.currency,
            f"{p.gateway} payment",
            [("cash", p.amount), ("receivable", -p.amount)],
        )
    advance()
    refunds = Refund.objects.filter(status="succeeded", created_at__gte=since, created_at__lt=until).select_related(
        "payment__organization", "credit_note"
    )
    for r in refunds:
        out.entry(
            f"refund-{r.pk}",
            r.created_at.astimezone(UTC).date(),
            "refund",
            r.credit_note.number,
            r.payment.organization,
            r.currency,
            "Refund of credit on the balance",
            [("customer_credit", r.amount), ("cash", -r.amount)],
        )
    advance()
    # Every write-off (dunning's final action, staff, the API) sets the invoice's uncollectible_at.
    written_off = Invoice.objects.filter(uncollectible_at__gte=since, uncollectible_at__lt=until).select_related(
        "organization"
    )
    for w in written_off:
        out.entry(
            f"write_off-{w.number}",
            w.uncollectible_at.astimezone(UTC).date(),
            "write_off",
            w.number,
            w.organization,
            w.currency,
            "Written off as uncollectible",
            [("bad_debt", w.amount_due), ("receivable", -w.amount_due)],
        )
    advance()
    recognized = (
        RevenueEntry.objects.filter(recognized_on__gte=start, recognized_on__lte=end)
        .annotate(month=TruncMonth("recognized_on"))
        .values("month", "currency", "pattern")
        .annotate(total=Sum("amount"))
        .order_by("month", "currency", "pattern")
    )
    for row in recognized:
        month, currency, pattern = row["month"], row["currency"], row["pattern"]
        last = min((month + timedelta(days=32)).replace(day=1) - timedelta(days=1), end)
        out.entry(
            f"recognition-{month:%Y-%m}-{currency}-{pattern}",
            last,
            "recognition",
            f"{month:%Y-%m}",
            None,
            currency,
            f"Revenue recognized ({pattern})",
            [("deferred_revenue", row["total"]), (f"revenue_{pattern}", -row["total"])],
        )
    advance()
    lines = [line for line in out.lines if not currency or line.currency == currency]
    return sorted(lines, key=lambda line: (line.date, line.entry_id))


def journal_rows(lines: list[JournalLine]) -> list[list]:
    """The documented layout (COLUMNS): dates and amounts typed (XLSX cells; core.tabular writes
    the CSV's text)."""
    return [
        [
            line.entry_id,
            line.date,
            line.journal,
            line.document,
            line.customer,
            line.account_code,
            line.account_name,
            line.debit,
            line.credit,
            line.currency,
            line.memo,
        ]
        for line in lines
    ]


def journal_csv(lines: list[JournalLine]) -> bytes:
    return csv_bytes(COLUMNS, journal_rows(lines))


def journal_xlsx(lines: list[JournalLine]) -> bytes:
    """The same columns; debit and credit as numbers (exact decimals of at most 3 places)."""
    return xlsx_bytes("Journal", COLUMNS, journal_rows(lines))


# -- the accounting packages' import layouts ------------------------------------------------------
# Both import one currency, the company's (QuickBooks Online without multicurrency, Xero's manual
# journals): an export in these layouts is of one currency (adminpanel.exports asks for it).
# Dates are text in the layouts' formats, in the XLSX too (what the import reads).

# QuickBooks Online, Settings > Import data > Journal entries: the columns its help page lists
# (docs/revenue.md cites it). Lines with the same Journal No. form one entry; one of Debits and
# Credits is filled; Account Name must match the chart of accounts (account numbers turned off);
# Name is the customer, which QuickBooks asks for on receivable lines.
QBO_COLUMNS = ["Journal No.", "Journal Date", "Account Name", "Debits", "Credits", "Description", "Name"]
_QBO_PREFIX = {"void": "V-", "payment": "PAY-", "refund": "REF-", "write_off": "WO-", "recognition": "REV-"}


def qbo_journal_no(line: JournalLine) -> str:
    """Short (QuickBooks' document numbers hold 21 characters) and unique across periods: an
    invoice's or credit note's own number, a prefix and the document or row id otherwise, the
    month and the pattern's initial for recognition (one currency a file)."""
    if line.journal in ("invoice", "credit_note"):
        return line.document
    if line.journal in ("payment", "refund"):
        return _QBO_PREFIX[line.journal] + line.entry_id.rsplit("-", 1)[1]
    if line.journal == "recognition":
        return f"REV-{line.document}-{line.entry_id.rsplit('-', 1)[1][0].upper()}"
    return _QBO_PREFIX[line.journal] + line.document


def qbo_rows(lines: list[JournalLine]) -> list[list]:
    return [
        [
            qbo_journal_no(line),
            line.date.strftime("%m/%d/%Y"),
            line.account_name,
            line.debit or None,
            line.credit or None,
            line.memo,
            line.customer_name,
        ]
        for line in lines
    ]


# Xero, Accounting > Manual journals > Import: the template's columns (docs/revenue.md cites the
# help page). Rows with the same Narration and Date form one journal; Amount is a debit when
# positive, a credit when negative; AccountCode is the code; TaxRate is mandatory and names one
# of the organisation's tax rates: the journal posts tax to its own account, so a rate without tax
# ("Tax Exempt", "No VAT", "BAS Excluded", "No GST" by region) is asked for with the export.
XERO_COLUMNS = [
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


def xero_rows(lines: list[JournalLine], *, tax_rate: str) -> list[list]:
    return [
        [
            f"{line.entry_id}: {line.memo}",
            line.date.strftime("%d/%m/%Y"),
            f"{line.customer_name} ({line.customer})" if line.customer else line.account_name,
            line.account_code,
            tax_rate,
            line.debit - line.credit,
            None,
            None,
            None,
            None,
        ]
        for line in lines
    ]
