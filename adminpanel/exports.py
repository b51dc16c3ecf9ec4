"""Accounting exports of a period (issue 14, item 5), built in the background: the journal in the
documented layout and in QuickBooks Online's and Xero's import layouts, and the invoices, their
lines, the payments and the customers, each as CSV and XLSX (core.tabular's writers, shared with
the portal's usage reports). The staff page (adminpanel.export_views) stores the request and
enqueues the task on commit; the task runs `accounting_export_run` through
core.background_exports, the portal's machinery: claimed once, progress on the row, the files
under the tenant's media, a failure recorded rather than retried.

Repeatable: a period is UTC days, both ends included, and every dataset selects by a date that
does not change once set (issued, applied, created) or by append-only rows, so the same period
gives the same rows; what can change later is only a current state shown as such (an invoice's
status and amount due, a customer's address). The columns are documented in docs/revenue.md."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import transaction

from adminpanel import journal
from billing.models import Organization
from core.background_exports import file_export_run
from core.money import round_money
from core.tabular import csv_bytes, xlsx_bytes
from invoicing.models import AccountingExport, Invoice, InvoiceLine, InvoiceStatus
from payments.models import Payment, PaymentStatus

EXPORT_TASK = "adminpanel.accounting_export_run"
PROGRESS_EVERY = 500  # source rows between progress writes (the page polls once a second)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Spec:
    start: date
    end: date
    currency: str = ""  # only this currency's rows; required by the QuickBooks and Xero layouts
    tax_rate: str = ""  # Xero's TaxRate column

    def as_json(self) -> dict:
        start, end = self.start.isoformat(), self.end.isoformat()
        return {"from": start, "to": end, "currency": self.currency, "tax_rate": self.tax_rate}

    @classmethod
    def from_json(cls, data: dict) -> Spec:
        return cls(date.fromisoformat(data["from"]), date.fromisoformat(data["to"]), data["currency"], data["tax_rate"])

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return journal.period_bounds(self.start, self.end)


def _utc(instant: datetime | None) -> datetime | None:
    """A naive UTC date-time: spreadsheets have no zones (the headers say UTC)."""
    return instant.astimezone(UTC).replace(tzinfo=None) if instant else None


def _day(instant: datetime | None) -> date | None:
    return instant.astimezone(UTC).date() if instant else None


def _counted(queryset, progress: Progress) -> Iterable:
    """The rows, reporting progress every PROGRESS_EVERY (and at the last)."""
    total = queryset.count()
    progress(0, total)
    for done, row in enumerate(queryset.iterator(chunk_size=2000), start=1):
        if done % PROGRESS_EVERY == 0 or done == total:
            progress(done, total)
        yield row


def _journal(spec: Spec, progress: Progress) -> list[journal.JournalLine]:
    return journal.journal_lines(spec.start, spec.end, currency=spec.currency, progress=progress)


def journal_dataset(spec: Spec, progress: Progress) -> list[list]:
    return journal.journal_rows(_journal(spec, progress))


def qbo_dataset(spec: Spec, progress: Progress) -> list[list]:
    return journal.qbo_rows(_journal(spec, progress))


def xero_dataset(spec: Spec, progress: Progress) -> list[list]:
    return journal.xero_rows(_journal(spec, progress), tax_rate=spec.tax_rate)


INVOICE_COLUMNS = [
    "number",
    "status",
    "customer",
    "customer_name",
    "currency",
    "issued_on",
    "due_on",
    "period_start_utc",
    "period_end_utc",
    "subtotal",
    "tax_total",
    "total",
    "credits_applied",
    "amount_paid",
    "amount_due",
    "paid_on",
    "voided_on",
]


def _invoices(spec: Spec):
    since, until = spec.bounds
    invoices = Invoice.objects.exclude(status=InvoiceStatus.DRAFT).filter(issued_at__gte=since, issued_at__lt=until)
    return invoices.filter(currency=spec.currency) if spec.currency else invoices


def invoices_dataset(spec: Spec, progress: Progress) -> Iterable[list]:
    """Invoices issued in the period (finalized: a draft has no number), by issue time."""
    rows = _invoices(spec).select_related("organization").order_by("issued_at", "number")
    for i in _counted(rows, progress):
        c = i.currency
        yield [
            i.number,
            i.status,
            i.organization.external_id,
            i.organization.name,
            c,
            _day(i.issued_at),
            _day(i.due_at),
            _utc(i.period_start),
            _utc(i.period_end),
            *(round_money(v, c) for v in (i.subtotal, i.tax_total, i.total, i.credits_applied, i.amount_paid)),
            round_money(i.amount_due, c),
            _day(i.paid_at),
            _day(i.voided_at),
        ]


LINE_COLUMNS = [
    "invoice_number",
    "position",
    "kind",
    "description",
    "currency",
    "quantity",
    "unit_amount",
    "amount",
    "net_amount",
    "tax_amount",
    "tax_rate_percent",
    "tax_jurisdiction",
    "meter",
    "period_start_utc",
    "period_end_utc",
]


def _plain(value: Decimal | None) -> Decimal | None:
    """A 12-place quantity or unit price without its trailing zeros (exact)."""
    if value is None:
        return None
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def lines_dataset(spec: Spec, progress: Progress) -> Iterable[list]:
    """The lines of the invoices issued in the period, by invoice then position."""
    rows = (
        InvoiceLine.objects.filter(invoice__in=_invoices(spec))
        .select_related("invoice")
        .order_by("invoice__issued_at", "invoice__number", "position")
    )
    for line in _counted(rows, progress):
        c = line.currency
        yield [
            line.invoice.number,
            line.position,
            line.kind,
            line.description,
            c,
            _plain(line.quantity),
            _plain(line.unit_amount),
            round_money(line.amount, c),
            round_money(line.net_amount, c),
            round_money(line.tax_amount, c),
            _plain(line.tax_rate),
            line.tax_jurisdiction,
            line.meter_code,
            _utc(line.period_start),
            _utc(line.period_end),
        ]


PAYMENT_COLUMNS = [
    "payment_id",
    "applied_on",
    "invoice_number",
    "customer",
    "customer_name",
    "gateway",
    "method_type",
    "gateway_payment_id",
    "currency",
    "amount",
    "amount_refunded",
]


def payments_dataset(spec: Spec, progress: Progress) -> Iterable[list]:
    """Succeeded payments applied to their invoice in the period (the journal's payment entries);
    `amount_refunded` is what has been refunded of each so far."""
    since, until = spec.bounds
    rows = Payment.objects.filter(status=PaymentStatus.SUCCEEDED, applied_at__gte=since, applied_at__lt=until)
    if spec.currency:
        rows = rows.filter(currency=spec.currency)
    rows = rows.select_related("invoice", "organization").order_by("applied_at", "pk")
    for p in _counted(rows, progress):
        yield [
            p.pk,
            _day(p.applied_at),
            p.invoice.number,
            p.organization.external_id,
            p.organization.name,
            p.gateway,
            p.method_type,
            p.gateway_payment_id or "",
            p.currency,
            round_money(p.amount, p.currency),
            round_money(p.amount_refunded, p.currency),
        ]


CUSTOMER_COLUMNS = [
    "external_id",
    "name",
    "billing_email",
    "currency",
    "country",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "tax_id",
    "tax_exempt",
    "timezone",
    "status",
    "created_on",
]


def customers_dataset(spec: Spec, progress: Progress) -> Iterable[list]:
    """The organizations that existed by the period's end (created on or before its last day),
    with their details as they are now."""
    rows = Organization.objects.filter(created_at__lt=spec.bounds[1])
    if spec.currency:
        rows = rows.filter(currency=spec.currency)
    for o in _counted(rows.order_by("created_at", "pk"), progress):
        yield [
            o.external_id,
            o.name,
            o.billing_email,
            o.currency,
            o.country,
            o.address_line1,
            o.address_line2,
            o.city,
            o.region,
            o.postal_code,
            o.tax_id,
            "yes" if o.tax_exempt else "no",
            o.timezone,
            o.status,
            _day(o.created_at),
        ]


@dataclass(frozen=True)
class Dataset:
    label: str
    columns: list[str]
    rows: Callable[[Spec, Progress], Iterable[list]]
    one_currency: bool = False  # the accounting package imports one currency


DATASETS: dict[str, Dataset] = {
    "journal": Dataset("Journal (documented layout)", journal.COLUMNS, journal_dataset),
    "journal_qbo": Dataset("Journal for QuickBooks Online", journal.QBO_COLUMNS, qbo_dataset, one_currency=True),
    "journal_xero": Dataset("Journal for Xero", journal.XERO_COLUMNS, xero_dataset, one_currency=True),
    "invoices": Dataset("Invoices", INVOICE_COLUMNS, invoices_dataset),
    "invoice_lines": Dataset("Invoice lines", LINE_COLUMNS, lines_dataset),
    "payments": Dataset("Payments", PAYMENT_COLUMNS, payments_dataset),
    "customers": Dataset("Customers", CUSTOMER_COLUMNS, customers_dataset),
}


def export_files(kind: str, spec: Spec, progress: Progress) -> tuple[int, dict[str, tuple[str, bytes]]]:
    """The rows of `kind` for `spec` as its CSV and XLSX."""
    dataset = DATASETS[kind]
    rows = list(dataset.rows(spec, progress))
    name = f"{kind}-{spec.start}-{spec.end}{'-' + spec.currency if spec.currency else ''}"
    return len(rows), {
        "csv": (f"{name}.csv", csv_bytes(dataset.columns, rows)),
        "xlsx": (f"{name}.xlsx", xlsx_bytes(dataset.label[:31], dataset.columns, rows)),
    }


def accounting_export_request(*, actor, kind: str, spec: Spec) -> AccountingExport:
    """Store the export and enqueue its task once the row is committed."""
    from adminpanel.tasks import accounting_export_run_task

    with transaction.atomic():
        export = AccountingExport.objects.create(kind=kind, spec=spec.as_json(), requested_by=actor)
        transaction.on_commit(lambda: accounting_export_run_task.delay(export.pk))
    return export


def accounting_export_run(*, export_id: int) -> str:
    def build(export, progress):
        return export_files(export.kind, Spec.from_json(export.spec), progress)

    return file_export_run(model=AccountingExport, export_id=export_id, build=build, progress_every=1)
