"""A report as files: CSV and XLSX (core.tabular's writers, shared with the staff's accounting
exports) and the monthly statement PDF (WeasyPrint, with invoicing's fetcher that refuses the
network). Pure: they take what the selectors read and write nothing.

Figures are metering's exact decimals: as text in the CSV, as numbers in the XLSX (a spreadsheet
computes with them; Excel keeps 15 significant digits). Times are the organization's local
times: the CSV writes the bucket's start as ISO 8601 with its offset (unambiguous across a DST
change), the XLSX as a local date-time (spreadsheets have no zones) with the zone in the header.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.template.loader import render_to_string

from billing.models import Organization
from core.tabular import csv_bytes, xlsx_bytes
from metering.selectors.meter import meter_list
from metering.selectors.usage import usage_get
from portal.reports import Report
from portal.selectors import HistoryRow, billing_history_list


def _header(report: Report) -> list[str]:
    zone = report.organization.timezone
    return ["period_start", f"period ({zone})", "meter", *(["group"] if report.grouped else []), "value"]


def _group(report: Report, row) -> list[str]:
    if not report.grouped:
        return []
    return [row.group if row.group is not None else f"(not split by {report.spec.group_by})"]


def report_csv(report: Report) -> bytes:
    return csv_bytes(
        _header(report),
        (
            [
                row.bucket.local_start.isoformat(),
                row.bucket.label(report.spec.granularity),
                row.meter.code,
                *_group(report, row),
                "" if row.value is None else str(row.value),
            ]
            for row in report.rows
        ),
    )


def report_xlsx(report: Report) -> bytes:
    # streamed rows (core.tabular): a 744-hour x 3-meter report stays small in memory
    return xlsx_bytes(
        "Usage",
        [f"period start ({report.organization.timezone})", "meter", *(["group"] if report.grouped else []), "value"],
        (
            [
                row.bucket.local_start.replace(tzinfo=None),
                row.meter.code,
                *_group(report, row),
                row.value,  # a Decimal (a number cell) or None (empty)
            ]
            for row in report.rows
        ),
    )


# --- monthly statement --------------------------------------------------------------------------


@dataclass
class Statement:
    organization: Organization
    month: date  # the first local day
    documents: list[HistoryRow]  # invoices and credit notes dated in the month
    invoiced: Decimal  # invoices' totals, with tax
    credited: Decimal  # credit notes' totals
    due: Decimal  # what the month's invoices still ask for
    usage: list[tuple[str, Decimal | None]]  # (meter name, the month's figure)


def statement_get(*, organization: Organization, month: date) -> Statement:
    """The organization's documents dated in the local calendar month and its usage over it."""
    zone = ZoneInfo(organization.timezone)
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    start = datetime.combine(month, time(), zone).astimezone(UTC)
    end = datetime.combine(following, time(), zone).astimezone(UTC)
    documents = [r for r in billing_history_list(organization=organization) if start <= r.date < end]
    documents.sort(key=lambda r: (r.date, r.number))
    invoices = [r for r in documents if r.kind == "invoice" and r.status != "void"]
    return Statement(
        organization=organization,
        month=month,
        documents=documents,
        invoiced=sum((r.total for r in invoices), Decimal(0)),
        credited=sum((r.total for r in documents if r.kind == "credit_note"), Decimal(0)),
        due=sum((r.amount_due or Decimal(0) for r in invoices), Decimal(0)),
        usage=[
            (meter.name, usage_get(meter=meter, customer=organization.external_id, start=start, end=end).value)
            for meter in meter_list()
        ],
    )


def statement_pdf(statement: Statement) -> bytes:
    from weasyprint import HTML

    from invoicing.pdf_render import LocalFetcher, font_config

    html = render_to_string("portal/statement_pdf.html", {"s": statement, "organization": statement.organization})
    return HTML(string=html, url_fetcher=LocalFetcher()).write_pdf(font_config=font_config())
