"""Rows as files: CSV (the standard library's csv writer) and XLSX (openpyxl), the one writer
pair of the portal's usage reports and the staff's accounting exports.

A cell is what the caller gives: the XLSX keeps its type (a Decimal or an int is a number cell,
a date or a naive datetime a date cell, None an empty cell), so a spreadsheet computes with it;
the CSV writes text: a Decimal in plain notation (`format(value, "f")`, never `1E+2`), a date as
ISO 8601, None as an empty field, a string as it is (callers that need another text, such as a
local time with its offset, pass the string).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal

from openpyxl import Workbook  # type: ignore[import-untyped]  # no stubs in the venv


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):  # a datetime too
        return value.isoformat()
    return str(value)


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8, CRLF line ends (RFC 4180)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_text(value) for value in row] for row in rows)
    return out.getvalue().encode("utf-8")


def xlsx_bytes(sheet_name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """One sheet. Write-only mode streams the rows, so a large export stays small in memory."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(sheet_name)
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
