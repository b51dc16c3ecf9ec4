"""Invoice PDF benchmark (`python bench/pdf.py`): warm renders per second in one process.

Invoices are built in memory (unsaved Invoice and InvoiceLine rows with the lines prefetched), so
no database is needed and only rendering is measured: `invoice_pdf_render` for a one-page invoice
(5 lines, one with tier pieces, one discount, a logo) and a three-page one (60 lines).

Baseline in the same run: WeasyPrint rendering a one-paragraph page with the same font, i.e. the
fixed cost of a document that no template change can remove.

Prints one line per case (pages, ms per render median / p95, CPU ms, renders per second of wall
time and per second of one core's CPU time) and a
last line of JSON. BENCH_PDF_ROUNDS sets the renders per case (default 40); BENCH_PDF_OUT a
directory to write one PDF per case into (to look at).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

ROUNDS = int(os.environ.get("BENCH_PDF_ROUNDS", "40"))
D = Decimal
APRIL = (datetime(2027, 3, 31, 22, tzinfo=UTC), datetime(2027, 4, 30, 22, tzinfo=UTC))
TIERS = [
    {"label": "tier", "tier": 0, "quantity": "1000", "unit_amount": "0", "flat_amount": "0", "amount": "0"},
    {"label": "tier", "tier": 1, "quantity": "4000", "unit_amount": "0.0025", "flat_amount": "0", "amount": "10"},
]


def invoice_in_memory(count: int, *, logo: str):
    from billing.models import Organization
    from invoicing.models import Invoice, InvoiceLine

    organization = Organization(external_id="acme", name="Acme GmbH", currency="EUR", timezone="Europe/Berlin")
    invoice = Invoice(
        pk=1,
        organization=organization,
        status="open",
        number="INV-000001",
        currency="EUR",
        period_start=APRIL[0],
        period_end=APRIL[1],
        issued_at=APRIL[1],
        due_at=APRIL[1],
        seller={
            "name": "Seller GmbH",
            "address": "Hauptstraße 1\n10115 Berlin",
            "country": "DE",
            "tax_id": "DE123456789",
            "email": "billing@seller.example",
            "legal_text": "Seller GmbH · Amtsgericht Berlin HRB 12345 · Managing director: A. Example",
            "primary_color": "#0b6e4f",
            "accent_color": "#e4572e",
            "logo": logo,
        },
        customer={"external_id": "acme", "name": "Acme GmbH", "address_line1": "Industriestraße 7", "city": "München"},
    )
    lines, subtotal, tax_total = [], D(0), D(0)
    for i in range(count):
        discount = i == 1  # reduces line 0, which is taxed on its net of the discount
        amount = D("-4.90") if discount else D(f"{i + 10}.25")
        net = D(0) if discount else amount + (D("-4.90") if i == 0 and count > 1 else D(0))
        tax = (net * D("0.19")).quantize(D("0.01"))
        subtotal, tax_total = subtotal + net, tax_total + tax
        lines.append(
            InvoiceLine(
                pk=i + 1,
                position=i,
                kind="discount" if discount else "usage",
                description="Welcome coupon" if discount else f"Service item {i:03d}",
                currency="EUR",
                quantity=None if discount else D(5000),
                unit_amount=None if discount or i % 5 == 2 else D("0.002"),
                amount=amount,
                net_amount=net,
                tax_amount=tax,
                tax_rate=D(19),
                tax_jurisdiction="DE",
                tax_reason="" if discount else "VAT at the standard rate of DE",
                taxes=[]
                if discount
                else [
                    {
                        "name": "VAT",
                        "jurisdiction": "DE",
                        "rate": "19",
                        "taxable_amount": str(net),
                        "amount": str(tax),
                        "reason": "VAT at the standard rate of DE",
                    }
                ],
                period_start=APRIL[0],
                period_end=APRIL[1],
                breakdown=TIERS if i % 5 == 2 else [],
                discounts_id=1 if discount else None,
            )
        )
    invoice.subtotal, invoice.tax_total = subtotal, tax_total
    invoice.total = invoice.amount_due = subtotal + tax_total
    invoice._prefetched_objects_cache = {"lines": lines}
    return invoice


def timed(render, rounds: int) -> dict:
    render()  # warm: fonts, the parsed stylesheet, templates
    wall, cpu = [], []
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        data = render()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    from pypdf import PdfReader

    return {
        "pages": len(PdfReader(io.BytesIO(data)).pages),
        "bytes": len(data),
        "ms_median": round(statistics.median(wall) * 1000, 1),
        "ms_p95": round(sorted(wall)[int(len(wall) * 0.95) - 1] * 1000, 1),
        "cpu_ms_median": round(statistics.median(cpu) * 1000, 1),
        "per_second": round(1 / statistics.median(wall), 1),
        # what one core sustains: CPU time is what other processes on the machine do not inflate
        "per_cpu_second": round(1 / statistics.median(cpu), 1),
        "data": data,
    }


def main() -> None:
    import django

    django.setup()
    from django.core.files.storage import FileSystemStorage
    from PIL import Image
    from weasyprint import HTML

    from invoicing import pdf_render as pdf
    from invoicing.models import Invoice
    from tenants.models import Tenant

    media = tempfile.mkdtemp(prefix="bench-pdf-")
    storage = FileSystemStorage(location=media)
    Tenant._meta.get_field("brand_logo").storage = storage
    Invoice._meta.get_field("pdf").storage = storage
    logo = io.BytesIO()
    Image.new("RGB", (360, 120), "#0b6e4f").save(logo, format="PNG")
    storage.save("branding/logo.png", io.BytesIO(logo.getvalue()))

    baseline_html = '<p style="font-family: DejaVu Sans">Invoice INV-000001</p>'

    def rendering(count: int):
        invoice = invoice_in_memory(count, logo="branding/logo.png")
        return lambda: pdf.invoice_pdf_render(invoice=invoice)

    cases = {
        "baseline_minimal_page": lambda: HTML(string=baseline_html).write_pdf(font_config=pdf.font_config()),
        "invoice_1_page_5_lines": rendering(5),
        "invoice_3_pages_60_lines": rendering(60),
    }
    results = {}
    out = os.environ.get("BENCH_PDF_OUT")
    for name, render in cases.items():
        result = timed(render, ROUNDS)
        data = result.pop("data")
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / f"{name}.pdf").write_bytes(data)
        results[name] = result
        print(
            f"{name:28} {result['pages']} page(s)  median {result['ms_median']:6.1f} ms  p95 {result['ms_p95']:6.1f} ms"
            f"  cpu {result['cpu_ms_median']:6.1f} ms  {result['per_second']:5.1f}/s wall"
            f"  {result['per_cpu_second']:5.1f}/s per core",
            flush=True,
        )
    shutil.rmtree(media, ignore_errors=True)
    print(json.dumps({"rounds": ROUNDS, **results}))


if __name__ == "__main__":
    main()
