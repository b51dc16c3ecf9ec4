"""The invoice PDF (WeasyPrint), rendered from the invoice alone; and the VOID stamp laid over a
stored PDF. Both write nothing (invoicing.services.pdf_store stores the document once).

- What is printed comes from the invoice alone: its lines and totals, and the seller and customer
  snapshots taken at finalization (the tenant's name, address, colours, legal text and logo as
  they were then). Only the logo's bytes are read from storage (the snapshot holds its name).
- Figures are written by invoicing.formatting (babel, from the stored Decimals).
- Rendering never touches the network: `LocalFetcher` serves only the files under `static/`
  and the logo bytes read beforehand, and refuses every other URL (http, https, ftp, other files).
"""

from __future__ import annotations

import io
import logging
import mimetypes
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from urllib.request import url2pathname

from django.conf import settings
from django.db import connection
from django.template.loader import render_to_string
from django_tenants.utils import schema_context
from weasyprint import CSS, HTML, URLFetcher
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcherResponse

from billing.line_json import breakdown_from_json
from billing.pricing.results import BreakdownItem
from core.errors import DomainError
from invoicing.formatting import DEFAULT_COLORS, HEX_COLOR, Fmt, invoice_fmt
from invoicing.models import FINAL_STATUSES, Invoice, InvoiceLine
from invoicing.remittance import remittance_rows

logger = logging.getLogger(__name__)

STATIC_DIR = Path(settings.BASE_DIR) / "static"
STYLESHEET = STATIC_DIR / "src" / "invoice-pdf.css"
LOGO_URL = "storage:logo"  # the one storage-backed resource a render may fetch (see LocalFetcher)

# Human names of billing.pricing's breakdown labels (BreakdownItem.label).
BREAKDOWN_LABELS = {
    "units": "Units",
    "packages": "Packages",
    "free_units": "Free units",
    "free_events": "Free events",
    "rate": "Percentage",
    "fixed_fee": "Fixed fee per event",
    "per_event_bounds": "Per-event minimum/maximum",
}


def invoice_pdf_render(*, invoice: Invoice) -> bytes:
    """The PDF of a finalized invoice, as bytes. A draft is refused (`invoice_not_final`): it has
    no number and its lines may still change. Reads the invoice's lines and organization (one
    query each unless prefetched / selected) and the logo file; writes nothing."""
    if invoice.status not in FINAL_STATUSES:
        raise DomainError(
            f"Invoice {invoice} is not finalized: a draft has no PDF.", code="invoice_not_final", status_code=409
        )
    resources: dict[str, tuple[bytes, str]] = {}
    logo = _logo_read(invoice.seller.get("logo") or "")
    if logo is not None:
        resources[LOGO_URL] = logo
    context = _pdf_context(invoice, has_logo=logo is not None)
    html = render_to_string("invoicing/invoice_pdf.html", context)
    fetcher = LocalFetcher(resources=resources)
    document = _InvoiceHTML(string=html, base_url=STATIC_DIR.as_uri() + "/", url_fetcher=fetcher)
    return document.write_pdf(stylesheets=[_stylesheet()], font_config=font_config())


# The user-agent stylesheet for invoice PDFs: only what the invoice template's elements need
# (the stylesheet sets the rest). WeasyPrint's full HTML5 one is matched against every element,
# which was a quarter of the render time of a 3-page invoice (bench/pdf.py). `_ua_stylesheets` is
# WeasyPrint's hook (70.0, pinned); should an upgrade drop it, the stock sheet applies: slower,
# same output (tests/invoicing/test_pdf.py compares the two).
LEAN_UA_CSS = """
head, style, title, meta, link, script { display: none }
html, body, div, p, h1, h2, header, section { display: block }
table { display: table; box-sizing: border-box; border-collapse: separate; text-indent: initial }
thead { display: table-header-group; vertical-align: middle }
tbody { display: table-row-group; vertical-align: middle }
tr { display: table-row; vertical-align: inherit }
td, th { display: table-cell; vertical-align: inherit }
th { font-weight: bold }
sup { vertical-align: super; font-size: smaller; line-height: normal }
img { overflow: hidden }
br::before { content: "\\A"; white-space: pre-line }
h1, h2 { break-after: avoid; break-inside: avoid }
@page {
  @top-left { text-align: left; vertical-align: middle }
  @top-center { text-align: center; vertical-align: middle }
  @top-right { text-align: right; vertical-align: middle }
  @bottom-left { text-align: left; vertical-align: middle }
  @bottom-center { text-align: center; vertical-align: middle }
  @bottom-right { text-align: right; vertical-align: middle }
}
"""


@cache
def _lean_ua() -> CSS:
    return CSS(string=LEAN_UA_CSS)


class _InvoiceHTML(HTML):
    def _ua_stylesheets(self, forms: bool = False) -> list[CSS]:
        return [_lean_ua()]


class LocalFetcher(URLFetcher):
    """Serves the static files of this checkout and the resources handed over (the logo), and
    nothing else: a template or a tenant's text can never make a render reach the network."""

    def __init__(self, *, resources: dict[str, tuple[bytes, str]] | None = None) -> None:
        super().__init__(allowed_protocols=("file", "storage", "data"), allow_redirects=False)
        self._resources = resources or {}

    def fetch(self, url: str, headers: dict | None = None):
        if url in self._resources:
            body, mime_type = self._resources[url]
            return URLFetcherResponse(url, body, {"Content-Type": mime_type})
        if url.startswith("data:"):
            return super().fetch(url, headers)  # decoded in process (urllib's DataHandler)
        if url.startswith("file:"):
            path = Path(url2pathname(unquote(url.split("?")[0].removeprefix("file:")))).resolve()
            if path.is_relative_to(STATIC_DIR.resolve()) and path.is_file():
                mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime_type})
        raise ValueError(f"invoice PDFs fetch no resource from {url[:200]!r}")


@cache
def font_config():
    # One per process: building it costs fontconfig set-up, and the stylesheet has no @font-face.
    return FontConfiguration()


def _stylesheet():
    return _stylesheet_cached(STYLESHEET.stat().st_mtime_ns)


@cache
def _stylesheet_cached(mtime_ns: int):
    # Parsed once per process (keyed on the file's mtime, so an edited file is picked up).
    return CSS(
        string=STYLESHEET.read_text(encoding="utf-8"),
        base_url=STYLESHEET.parent.as_uri() + "/",
        url_fetcher=LocalFetcher(),
        font_config=font_config(),
    )


def _logo_read(name: str) -> tuple[bytes, str] | None:
    """The logo's bytes and type, or None. Tenant rows live in the public schema, so a logo may
    have been stored from the public host (its media directory) or from the tenant's own."""
    if not name or ".." in name.split("/") or name.startswith("/"):
        return None
    from tenants.models import Tenant

    storage = Tenant._meta.get_field("brand_logo").storage
    mime_type = mimetypes.guess_type(name)[0] or ""
    if mime_type not in ("image/png", "image/jpeg", "image/svg+xml", "image/gif", "image/webp"):
        logger.warning("invoice logo %r is not an image type WeasyPrint renders; left out", name)
        return None
    for schema in dict.fromkeys([connection.schema_name, "public"]):
        with schema_context(schema):
            if storage.exists(name):
                with storage.open(name, "rb") as f:
                    return f.read(), mime_type
    logger.warning("invoice logo %r not found in storage; left out", name)
    return None


# ---------------------------------------------------------------------------------------------
# What the template shows (every figure formatted here, so the template only lays it out)


@dataclass
class _Row:
    kind: str
    description: str
    period: str = ""
    quantity: str = ""
    unit: str = ""
    amount: str = ""
    rate: str = ""
    notes: list[int] = field(default_factory=list)
    proration: str = ""
    breakdown: list[dict[str, str]] = field(default_factory=list)
    discounts: list[_Row] = field(default_factory=list)


def _pdf_context(invoice: Invoice, *, has_logo: bool) -> dict[str, Any]:
    fmt = invoice_fmt(invoice)
    seller, customer = invoice.seller or {}, invoice.customer or {}
    # .all() (sorted here) so a caller's prefetch_related("lines") is used.
    lines = sorted(invoice.lines.all(), key=lambda line: line.position)

    notes: OrderedDict[str, int] = OrderedDict()  # each tax reason printed once, numbered
    groups: list[_Row] = []
    by_id: dict[int, _Row] = {}
    for line in lines:
        row = _line_row(line, fmt, notes)
        parent = by_id.get(line.discounts_id) if line.discounts_id else None
        if parent is not None:
            parent.discounts.append(row)
        else:
            groups.append(row)
            by_id[line.pk] = row

    primary, accent = (
        color if HEX_COLOR.match(str(color or "")) else default
        for color, default in zip(
            (seller.get("primary_color"), seller.get("accent_color")), DEFAULT_COLORS, strict=True
        )
    )
    return {
        "invoice": invoice,
        "number": invoice.number,
        "status": invoice.status,
        "seller": seller,
        "seller_address": _address_lines(seller.get("address", "")),
        "customer": customer,
        "customer_address": _customer_address(customer),
        "has_logo": has_logo,
        "logo_url": LOGO_URL,
        "primary_color": primary,
        "accent_color": accent,
        "issued": fmt.date(invoice.issued_at),
        "due": fmt.date(invoice.due_at),
        "period": fmt.period(invoice.period_start, invoice.period_end),
        "currency": invoice.currency,
        "prices_include_tax": bool(seller.get("prices_include_tax")),
        "groups": groups,
        "tax_summary": _tax_summary(lines, fmt),
        "notes": [(number, text) for text, number in notes.items()],
        "subtotal": fmt.money(invoice.subtotal),
        "tax_total": fmt.money(invoice.tax_total),
        "total": fmt.money(invoice.total),
        "credits_applied": fmt.money(-invoice.credits_applied) if invoice.credits_applied else "",
        "amount_paid": fmt.money(-invoice.amount_paid) if invoice.amount_paid else "",
        "amount_due": fmt.money(invoice.amount_due),
        "remittance": remittance_rows(invoice),
    }


def _line_row(line: InvoiceLine, fmt: Fmt, notes: OrderedDict[str, int]) -> _Row:
    row = _Row(
        kind=line.kind,
        description=line.description,
        period=fmt.period(line.period_start, line.period_end),
        quantity=fmt.number(line.quantity),
        unit=fmt.unit(line.unit_amount),
        amount=fmt.money(line.amount),
        rate=fmt.percent(line.tax_rate) if line.tax_rate is not None else "—",
    )
    if line.tax_reason:
        row.notes.append(notes.setdefault(line.tax_reason, len(notes) + 1))
    if line.proration and line.proration.get("of"):
        share = Decimal(line.proration["seconds"]) / Decimal(line.proration["of"]) * 100
        row.proration = f"prorated: {fmt.percent(share.quantize(Decimal('0.01')))} of the period"
    items = breakdown_from_json(line.breakdown or [])
    # A single per-unit piece repeats the line itself: only show pieces that explain something.
    if not (len(items) == 1 and items[0].label == "units"):
        row.breakdown = [_breakdown_row(item, fmt) for item in items]
    return row


def _breakdown_row(item: BreakdownItem, fmt: Fmt) -> dict[str, str]:
    label = item.label
    quantity, unit, flat, amount = item.quantity, item.unit_amount, item.flat_amount, item.amount
    if label == "tier":
        name = f"Tier {int(item.tier or 0) + 1}"
    else:
        name = BREAKDOWN_LABELS.get(label, label.replace("_", " ").capitalize())
    unit_text = fmt.percent(unit * 100) if label == "rate" else fmt.unit(unit)
    if flat:
        unit_text = f"{unit_text} + {fmt.unit(flat)} flat" if unit else f"{fmt.unit(flat)} flat"
    return {"label": name, "quantity": fmt.number(quantity), "unit": unit_text, "amount": fmt.unit(amount)}


def _tax_summary(lines: list[InvoiceLine], fmt: Fmt) -> list[dict[str, str]]:
    """Per tax, jurisdiction and rate: the taxable amount and the tax (sums of the lines' rounded
    components, so the tax column adds up to the invoice's tax total)."""
    sums: OrderedDict[tuple[str, str, Decimal], list[Decimal]] = OrderedDict()
    for line in lines:
        for tax in line.taxes or []:
            key = (tax["name"], tax["jurisdiction"], Decimal(tax["rate"]))
            pair = sums.setdefault(key, [Decimal(0), Decimal(0)])
            pair[0] += Decimal(tax["taxable_amount"])
            pair[1] += Decimal(tax["amount"])
    return [
        {
            "name": name,
            "jurisdiction": jurisdiction,
            "rate": fmt.percent(rate),
            "taxable": fmt.money(taxable),
            "amount": fmt.money(amount),
        }
        for (name, jurisdiction, rate), (taxable, amount) in sums.items()
    ]


def _address_lines(text: str) -> list[str]:
    return [part.strip() for part in str(text or "").splitlines() if part.strip()]


def _customer_address(customer: dict) -> list[str]:
    city_line = " ".join(p for p in (customer.get("postal_code"), customer.get("city")) if p)
    parts = [customer.get("address_line1"), customer.get("address_line2"), city_line, customer.get("region")]
    parts.append(customer.get("country"))
    return [str(p).strip() for p in parts if p and str(p).strip()]


# ---------------------------------------------------------------------------------------------
# The VOID stamp


def invoice_pdf_void_stamp(data: bytes, *, invoice: Invoice) -> bytes:
    """`data` (a stored invoice PDF) with a VOID watermark and "Voided on <date>" (the
    organization's date) laid over each page. Writes nothing."""
    from pypdf import PdfReader, PdfWriter  # only void invoices need it

    voided = invoice_fmt(invoice).date(invoice.voided_at)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    stamps: dict[tuple[float, float], Any] = {}  # one stamp per page size
    for page in writer.pages:
        size = (float(page.mediabox.width), float(page.mediabox.height))
        if size not in stamps:
            html = render_to_string(
                "invoicing/invoice_void_stamp.html",
                {"width": size[0], "height": size[1], "number": invoice.number, "voided": voided},
            )
            stamp = HTML(string=html, url_fetcher=LocalFetcher()).write_pdf(font_config=font_config())
            stamps[size] = PdfReader(io.BytesIO(stamp)).pages[0]
        page.merge_page(stamps[size], over=True)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
