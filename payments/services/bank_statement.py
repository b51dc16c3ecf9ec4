"""Bank statement import: a CSV export of the seller's account, each incoming line matched to an
invoice by its creditor reference and applied as a bank transfer (payments.services.bank_transfer).

- The whole file is read and checked first (a malformed row refuses the file: nothing written).
- Each line is then stored and matched in its own transaction, once: its `fingerprint` (unique)
  is a hash of its date, amount, currency, description, counterparty and its occurrence among
  identical lines of the file, so importing the same file again, or an export that overlaps an
  earlier one, adds nothing for the lines already in (and an import stopped halfway is finished
  by importing the file again).
- Matching: the description is searched for ISO 11649 references (invoicing.remittance, tolerant
  of spaces and case); exactly one that is an invoice's, in the line's currency, open or
  uncollectible → a transfer for the line's amount: equal to the amount due → paid, less →
  partial payment, more → paid and the rest credit. Anything else is `unmatched` with the reason,
  for a person to assign (`statement_line_assign`) or dismiss; outgoing lines are `ignored`.
  An invoice already paid is not matched automatically: a second payment is usually a mistake
  the person should see (assigned by hand, it becomes credit)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_actor, audit_event
from billing.decimals import decimal_parse
from core.errors import DomainError
from core.money import Money, UnknownCurrencyError, minor_units
from invoicing.models import Invoice, InvoiceStatus
from invoicing.remittance import references_in
from invoicing.services.invoice import invoice_lock
from payments.models.bank import MATCHED, LineOutcome, StatementImport, StatementLine
from payments.services.bank_transfer import TransferRecorded, transfer_apply

MAX_ROWS = 20_000
DATE_FORMATS = {
    "%Y-%m-%d": "2027-04-30 (ISO)",
    "%d.%m.%Y": "30.04.2027",
    "%d/%m/%Y": "30/04/2027",
    "%m/%d/%Y": "04/30/2027",
}
# The documented layout's header names (docs/payments.md); "reference" is taken for "description".
FIELDS = ("date", "amount", "currency", "description", "counterparty")


@dataclass(frozen=True)
class ColumnMap:
    """Which column holds what (header names, matched without regard to case or surrounding
    spaces), and how the bank writes dates and amounts. The defaults read the documented layout."""

    date: str = "date"
    amount: str = "amount"
    currency: str = "currency"  # may be "" when `default_currency` is given
    description: str = "description"
    counterparty: str = ""  # optional
    date_format: str = "%Y-%m-%d"
    decimal_comma: bool = False  # "1.234,56" rather than "1,234.56"
    default_currency: str = ""


@dataclass(frozen=True)
class StatementRow:
    row_number: int
    booked_on: date
    amount: Decimal
    currency: str
    description: str
    counterparty: str


def _invalid(message: str) -> DomainError:
    return DomainError(message, code="invalid_statement")


def statement_parse(data: bytes, *, columns: ColumnMap = ColumnMap()) -> list[StatementRow]:
    """The rows of a statement CSV (DomainError `invalid_statement` naming the row otherwise)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _invalid("The file is not UTF-8 text; export the statement as UTF-8 CSV.") from None
    first = text.split("\n", 1)[0]
    try:
        dialect = csv.Sniffer().sniff(first, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise _invalid("The file is empty.") from None
    index = _columns(header, columns)
    if columns.date_format not in DATE_FORMATS:
        raise _invalid(f"Unknown date format {columns.date_format!r}.")
    rows: list[StatementRow] = []
    try:
        for row_number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise _invalid(f"More than {MAX_ROWS} lines: split the statement.")
            rows.append(_row(row_number, cells, index, columns))
    except csv.Error as exc:
        raise _invalid(f"The file is not valid CSV: {exc}.") from None
    return rows


def _columns(header: list[str], columns: ColumnMap) -> dict[str, int | None]:
    wanted = {
        "date": columns.date,
        "amount": columns.amount,
        "currency": columns.currency,
        "description": columns.description,
        "counterparty": columns.counterparty,
    }
    if columns.description == "description" and "description" not in header and "reference" in header:
        wanted["description"] = "reference"
    if columns.counterparty == "" and "counterparty" in header:
        wanted["counterparty"] = "counterparty"
    index: dict[str, int | None] = {}
    for field, name in wanted.items():
        name = name.strip().lower()
        if not name:
            index[field] = None
        elif name in header:
            index[field] = header.index(name)
        else:
            raise _invalid(f'No column "{name}" (for the {field}) in the header: {", ".join(header)}.')
    for field in ("date", "amount", "description"):
        if index[field] is None:
            raise _invalid(f"Say which column holds the {field}.")
    if index["currency"] is None and not columns.default_currency:
        raise _invalid("Say which column holds the currency, or the statement's currency.")
    return index


def _cell(cells: list[str], i: int | None) -> str:
    return cells[i].strip() if i is not None and i < len(cells) else ""


def _row(row_number: int, cells: list[str], index: dict[str, int | None], columns: ColumnMap) -> StatementRow:
    where = f"Row {row_number}"
    try:
        booked_on = datetime.strptime(_cell(cells, index["date"]), columns.date_format).date()
    except ValueError:
        raise _invalid(f"{where}: the date is not {DATE_FORMATS[columns.date_format]}.") from None
    raw = _cell(cells, index["amount"]).replace(" ", "").replace("\u00a0", "").replace("'", "")
    raw = raw.removeprefix("+")
    raw = raw.replace(".", "").replace(",", ".") if columns.decimal_comma else raw.replace(",", "")
    # billing.decimals: the project's one decimal parser (plain ASCII notation, bounded digits).
    amount = decimal_parse(raw, field=f"{where}: the amount", code="invalid_statement", max_fraction_digits=4)
    currency = (_cell(cells, index["currency"]) or columns.default_currency).upper()
    try:
        minor_units(currency)
    except (UnknownCurrencyError, ValueError):
        raise _invalid(f"{where}: {currency!r} is not a currency code.") from None
    return StatementRow(
        row_number=row_number,
        booked_on=booked_on,
        amount=amount,
        currency=currency,
        description=_cell(cells, index["description"])[:2000],
        counterparty=_cell(cells, index["counterparty"])[:300],
    )


def _fingerprints(rows: list[StatementRow]) -> list[str]:
    seen: Counter[tuple] = Counter()
    prints = []
    for row in rows:
        key = (
            row.booked_on.isoformat(),
            format(row.amount.normalize(), "f"),
            row.currency,
            " ".join(row.description.upper().split()),
            " ".join(row.counterparty.upper().split()),
        )
        seen[key] += 1  # two equal transfers on one day are two lines, in every import of the file
        prints.append(hashlib.sha256(json.dumps([*key, seen[key]]).encode()).hexdigest())
    return prints


@transaction.atomic(durable=True)
def _import_start(*, actor, file_name: str, data: bytes, rows: int) -> StatementImport:
    record = StatementImport.objects.create(
        file_name=file_name[:255],
        file_sha256=hashlib.sha256(data).hexdigest(),
        imported_by=actor if getattr(actor, "pk", None) else None,
        lines_read=rows,
    )
    audit_event(record, event="payments.statement_imported", file=file_name[:255], lines=rows)
    return record


def statement_import(*, actor, file_name: str, data: bytes, columns: ColumnMap = ColumnMap()) -> StatementImport:
    """Import a statement file (see the module docstring). DomainError, with nothing written,
    when the file cannot be read."""
    rows = statement_parse(data, columns=columns)
    with audit_actor(actor):
        record = _import_start(actor=actor, file_name=file_name, data=data, rows=len(rows))
        outcomes: Counter[str] = Counter()
        for row, fingerprint in zip(rows, _fingerprints(rows), strict=True):
            with transaction.atomic(durable=True):
                line, created = StatementLine.objects.get_or_create(
                    fingerprint=fingerprint,
                    defaults={
                        "statement_import": record,
                        "row_number": row.row_number,
                        "booked_on": row.booked_on,
                        "amount": row.amount,
                        "currency": row.currency,
                        "description": row.description,
                        "counterparty": row.counterparty,
                        "outcome": LineOutcome.UNMATCHED,
                    },
                )
                if created:
                    outcomes[_match(line, actor=actor)] += 1
        StatementImport.objects.filter(pk=record.pk).update(
            lines_new=sum(outcomes.values()),
            lines_matched=sum(outcomes[o] for o in MATCHED),
            lines_unmatched=outcomes[LineOutcome.UNMATCHED],
        )
    record.refresh_from_db()
    return record


def _unmatched(line: StatementLine, reason: str, outcome: str = LineOutcome.UNMATCHED) -> str:
    line.outcome, line.reason = outcome, reason[:300]
    line.save(update_fields=["outcome", "reason"])
    return outcome


def _match(line: StatementLine, *, actor) -> str:
    if line.amount <= 0:
        return _unmatched(line, "Outgoing or zero amount.", LineOutcome.IGNORED)
    references = references_in(line.description)
    ids = set(Invoice.objects.filter(payment_reference__in=references).values_list("pk", flat=True))
    if not ids:
        return _unmatched(line, "No invoice reference in the description.")
    if len(ids) > 1:
        return _unmatched(line, "The description quotes several invoices.")
    invoice = invoice_lock(ids.pop())
    if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
        return _unmatched(line, f"Invoice {invoice.number} is {invoice.status}.")
    if invoice.currency != line.currency:
        return _unmatched(line, f"Invoice {invoice.number} is in {invoice.currency}.")
    try:
        with transaction.atomic(savepoint=True):
            recorded = _apply(line, invoice_id=invoice.pk, actor=actor)
    except DomainError as exc:
        return _unmatched(line, f"Invoice {invoice.number}: {exc.message}")
    return recorded.outcome


def _apply(line: StatementLine, *, invoice_id: int, actor) -> TransferRecorded:
    recorded = transfer_apply(
        actor=actor,
        invoice_id=invoice_id,
        amount=Money(line.amount, line.currency),
        received_on=line.booked_on,
        reference=line.description,
        counterparty=line.counterparty,
        statement_line=line,
    )
    line.invoice_id, line.outcome, line.reason = invoice_id, recorded.outcome, ""
    line.save(update_fields=["invoice", "outcome", "reason"])
    return recorded


def statement_line_assign(*, actor, line_id: int, invoice_id: int) -> TransferRecorded:
    """A person assigns an unmatched line to an invoice: recorded as its transfer (to an invoice
    already paid, all of it becomes credit). DomainError (nothing written) if the line was
    resolved meanwhile, or the invoice cannot take it (draft, void, another currency)."""
    with audit_actor(actor), transaction.atomic(durable=True):
        line = StatementLine.objects.select_for_update().get(pk=line_id)
        if line.outcome != LineOutcome.UNMATCHED:
            raise DomainError(f"Line {line.pk} is already {line.outcome}.", code="line_resolved", status_code=409)
        if line.amount <= 0:
            raise DomainError("Only money received can pay an invoice.", code="invalid_amount")
        recorded = _apply(line, invoice_id=invoice_id, actor=actor)
        line.resolved_by = actor if getattr(actor, "pk", None) else None
        line.resolved_at = timezone.now()
        line.save(update_fields=["resolved_by", "resolved_at"])
        audit_event(line, event="payments.statement_line_assigned", invoice=invoice_id, outcome=str(recorded.outcome))
        return recorded


def statement_line_dismiss(*, actor, line_id: int, reason: str) -> StatementLine:
    """A person decides an unmatched line pays no invoice (a refund from a supplier, interest…)."""
    with audit_actor(actor), transaction.atomic(durable=True):
        line = StatementLine.objects.select_for_update().get(pk=line_id)
        if line.outcome != LineOutcome.UNMATCHED:
            raise DomainError(f"Line {line.pk} is already {line.outcome}.", code="line_resolved", status_code=409)
        line.outcome, line.reason = LineOutcome.IGNORED, (reason or "Dismissed.")[:300]
        line.resolved_by = actor if getattr(actor, "pk", None) else None
        line.resolved_at = timezone.now()
        line.save(update_fields=["outcome", "reason", "resolved_by", "resolved_at"])
        audit_event(line, event="payments.statement_line_dismissed", reason=line.reason)
        return line
