"""Accounting exports (issue 14, item 5): journal entries for a period, as CSV and XLSX.

Here, above payments and dunning, because the journal reads payments, refunds and write-offs as
well as invoices, credit notes and the recognition rows (invoicing.RevenueEntry). Every entry is
balanced (its debits equal its credits, per currency) by construction: each posts one amount to
two or more accounts. The layout and the default accounts are documented in docs/revenue.md.

Revenue is booked through deferred revenue: an invoice credits `deferred_revenue` with its net
amount and the recognition entries move it to revenue month by month, so a balance of
`deferred_revenue` is revenue billed and not yet earned (negative: earned, not yet billed)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncMonth
from openpyxl import Workbook

from core.money import round_money
from dunning.models import CaseResolution, DunningCase
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


def accounts_get() -> dict[str, tuple[str, str]]:
    """The tenant's map over the defaults."""
    stored = AccountMap.objects.first()
    accounts = dict(DEFAULT_ACCOUNTS)
    for role, value in (stored.accounts if stored else {}).items():
        if role in accounts and isinstance(value, dict):
            accounts[role] = (str(value.get("code", "")), str(value.get("name", "")))
    return accounts


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time.min, tzinfo=UTC), datetime.combine(
        end + timedelta(days=1), time.min, tzinfo=UTC
    )


class _Entries:
    def __init__(self, accounts: dict[str, tuple[str, str]]) -> None:
        self.accounts, self.lines = accounts, []

    def entry(self, entry_id, day, journal, document, customer, currency, memo, postings) -> None:
        """`postings`: (role, signed amount), positive a debit; zero amounts are left out."""
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
                )
            )


def journal_lines(start: date, end: date) -> list[JournalLine]:
    """Every journal line dated in [start, end] (UTC days), by date then entry."""
    since, until = _bounds(start, end)
    out = _Entries(accounts_get())
    invoices = Invoice.objects.exclude(status=InvoiceStatus.DRAFT).select_related("organization")
    for i in invoices.filter(issued_at__gte=since, issued_at__lt=until):
        out.entry(
            f"invoice-{i.number}",
            i.issued_at.astimezone(UTC).date(),
            "invoice",
            i.number,
            i.organization.external_id,
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
    for i in invoices.filter(status=InvoiceStatus.VOID, voided_at__gte=since, voided_at__lt=until):
        out.entry(
            f"void-{i.number}",
            i.voided_at.astimezone(UTC).date(),
            "void",
            i.number,
            i.organization.external_id,
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
    notes = CreditNote.objects.filter(created_at__gte=since, created_at__lt=until).select_related(
        "invoice__organization"
    )
    for n in notes:
        out.entry(
            f"credit_note-{n.number}",
            n.created_at.astimezone(UTC).date(),
            "credit_note",
            n.number,
            n.invoice.organization.external_id,
            n.currency,
            f"Credit note on {n.invoice.number}: {n.reason}"[:200],
            [
                ("deferred_revenue", n.subtotal),
                ("tax_payable", n.tax_total),
                ("receivable", -n.applied_to_invoice),
                ("customer_credit", -n.credited_to_balance),
            ],
        )
    payments = Payment.objects.filter(
        status=PaymentStatus.SUCCEEDED, applied_at__gte=since, applied_at__lt=until
    ).select_related("invoice", "organization")
    for p in payments:
        out.entry(
            f"payment-{p.pk}",
            p.applied_at.astimezone(UTC).date(),
            "payment",
            p.invoice.number,
            p.organization.external_id,
            p.currency,
            f"{p.gateway} payment",
            [("cash", p.amount), ("receivable", -p.amount)],
        )
    refunds = Refund.objects.filter(status="succeeded", created_at__gte=since, created_at__lt=until).select_related(
        "payment__organization", "credit_note"
    )
    for r in refunds:
        out.entry(
            f"refund-{r.pk}",
            r.created_at.astimezone(UTC).date(),
            "refund",
            r.credit_note.number,
            r.payment.organization.external_id,
            r.currency,
            "Refund of credit on the balance",
            [("customer_credit", r.amount), ("cash", -r.amount)],
        )
    cases = DunningCase.objects.filter(
        resolution=CaseResolution.WRITTEN_OFF, closed_at__gte=since, closed_at__lt=until
    ).select_related("invoice", "organization")
    for c in cases:
        out.entry(
            f"write_off-{c.invoice.number}",
            c.closed_at.astimezone(UTC).date(),
            "write_off",
            c.invoice.number,
            c.organization.external_id,
            c.invoice.currency,
            "Written off as uncollectible",
            [("bad_debt", c.invoice.amount_due), ("receivable", -c.invoice.amount_due)],
        )
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
            "",
            currency,
            f"Revenue recognized ({pattern})",
            [("deferred_revenue", row["total"]), (f"revenue_{pattern}", -row["total"])],
        )
    return sorted(out.lines, key=lambda line: (line.date, line.entry_id))


def _row(line: JournalLine) -> list:
    return [
        line.entry_id,
        line.date.isoformat(),
        line.journal,
        line.document,
        line.customer,
        line.account_code,
        line.account_name,
        format(line.debit, "f"),
        format(line.credit, "f"),
        line.currency,
        line.memo,
    ]


def journal_csv(lines: list[JournalLine]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for line in lines:
        writer.writerow(_row(line))
    yield buffer.getvalue()


def journal_xlsx(lines: list[JournalLine]) -> bytes:
    """The same columns; debit and credit as numbers (exact decimals of at most 3 places)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Journal")
    sheet.append(COLUMNS)
    for line in lines:
        row = _row(line)
        row[1], row[7], row[8] = line.date, line.debit, line.credit
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
