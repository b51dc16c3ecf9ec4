"""Invoice PDFs and the invoice email (invoicing.pdf_render, invoicing.services.pdf_store and
invoice_email) on real PostgreSQL and WeasyPrint:
the text of the rendered PDF (pypdf) carries the invoice's exact figures, long invoices page
cleanly, a PDF is stored once and an email is sent once, and drafts get neither."""

from __future__ import annotations

import hashlib
import io
import logging
from decimal import ROUND_HALF_UP, Decimal
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from PIL import Image
from pypdf import PdfReader
from weasyprint import CSS, HTML

from core.errors import DomainError
from invoicing import pdf_render
from invoicing.models import Invoice, InvoiceLine
from invoicing.pdf_render import invoice_pdf_render
from invoicing.services.billing_run import billing_run
from invoicing.services.finalize import customer_snapshot
from invoicing.services.invoice_email import invoice_email_send
from invoicing.services.pdf_store import invoice_pdf_store
from tests.factories import OrganizationFactory
from tests.helpers import utc
from tests.invoicing.conftest import calls

D = Decimal
STANDARD = "VAT at the standard rate of DE"
REVERSE = "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council Directive 2006/112/EC)"
HEADER = "DESCRIPTION PERIOD QUANTITY UNIT PRICE TAX RATE AMOUNT"  # set in capitals by the CSS
SELLER = {
    "name": "Seller GmbH",
    "address": "Hauptstraße 1\n10115 Berlin",
    "country": "DE",
    "region": "",
    "tax_id": "DE123456789",
    "email": "billing@seller.example",
    "legal_text": "Seller GmbH · Amtsgericht Berlin HRB 12345 · Managing director: A. Example",
    "primary_color": "#0b6e4f",
    "accent_color": "#e4572e",
    "logo": "",
    "prices_include_tax": False,
}


APRIL_TEXT = "1 Apr 2027 \u2013 30 Apr 2027"  # how the PDF prints APRIL (an en dash)
LENGTHS = range(20, 29)  # around a full first page: 21-27 put the totals alone without the rule

# April 2027 in Europe/Berlin (UTC+2): the organization's month, as the billing run stores it.
APRIL = (utc(2027, 3, 31, 22), utc(2027, 4, 30, 22))


@pytest.fixture
def storage(storage, monkeypatch):
    """The invoicing tests' storage for logos too."""
    from tenants.models import Tenant

    monkeypatch.setattr(Tenant._meta.get_field("brand_logo"), "storage", storage)
    return storage


def line(description, amount, *, kind="usage", rate="19", reason=STANDARD, discount_of=None, **extra):
    return {
        "kind": kind,
        "description": description,
        "amount": D(amount),
        "rate": D(rate),
        "reason": reason,
        "discount_of": discount_of,
        **extra,
    }


def invoice_build(organization, specs, *, number="INV-000001", status="open", credits="0", seller=None):
    """A finalized invoice as finalization leaves it: lines taxed per line on their net (their
    own amount plus their discount lines'), totals summed from the lines, snapshots taken."""
    nets = {i: s["amount"] for i, s in enumerate(specs) if s["discount_of"] is None}
    for s in specs:
        if s["discount_of"] is not None:
            nets[s["discount_of"]] += s["amount"]
    taxes = {i: (net * specs[i]["rate"] / 100).quantize(D("0.01"), ROUND_HALF_UP) for i, net in nets.items()}
    subtotal, tax_total = sum(nets.values(), D(0)), sum(taxes.values(), D(0))
    total = subtotal + tax_total
    invoice = Invoice.objects.create(
        organization=organization,
        status=status,
        number=None if status == "draft" else number,
        currency="EUR",
        period_start=APRIL[0],
        period_end=APRIL[1],
        subtotal=subtotal,
        tax_total=tax_total,
        total=total,
        credits_applied=D(credits),
        amount_due=total - D(credits),
        issued_at=None if status == "draft" else utc(2027, 4, 30, 22, 30),  # 1 May 00:30 in Berlin
        due_at=None if status == "draft" else utc(2027, 5, 14, 22, 30),
        seller={**SELLER, **(seller or {})},
        customer=customer_snapshot(organization),
    )
    rows = []
    for position, s in enumerate(specs):
        own = s["discount_of"] is None
        rate = s["rate"]
        rows.append(
            InvoiceLine(
                invoice=invoice,
                position=position,
                kind=s["kind"],
                description=s["description"],
                currency="EUR",
                quantity=s.get("quantity"),
                unit_amount=s.get("unit_amount"),
                amount=s["amount"],
                net_amount=nets[position] if own else D(0),
                tax_amount=taxes[position] if own else D(0),
                tax_rate=rate,
                tax_jurisdiction="DE",
                tax_reason=s["reason"] if own else "",
                taxes=[
                    {
                        "name": "VAT",
                        "jurisdiction": "DE",
                        "rate": format(rate, "f"),
                        "taxable_amount": format(nets[position], "f"),
                        "amount": format(taxes[position], "f"),
                        "reason": s["reason"],
                    }
                ]
                if own
                else [],
                period_start=APRIL[0],
                period_end=APRIL[1],
                billing_period_start=APRIL[0],
                billing_period_end=APRIL[1],
                breakdown=s.get("breakdown", []),
                proration=s.get("proration"),
            )
        )
    saved = InvoiceLine.objects.bulk_create(rows)
    for row, s in zip(saved, specs, strict=True):
        if s["discount_of"] is not None:
            row.discounts_id = saved[s["discount_of"]].pk
            row.save(update_fields=["discounts"])
    return Invoice.objects.select_related("organization").get(pk=invoice.pk)


def euro(amount: Decimal) -> str:
    return f"€{amount.quantize(D('0.01')):,}"


def pages_text(data: bytes) -> list[str]:
    # One space between words whatever the layout put there, so assertions read like the page.
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


@pytest.fixture
def acme(in_a):
    return OrganizationFactory(
        external_id="acme",
        name="Acme GmbH",
        currency="EUR",
        country="DE",
        timezone="Europe/Berlin",
        billing_email="ap@acme.example",
        address_line1="Industriestraße 7",
        city="München",
        postal_code="80331",
        tax_id="DE987654321",
    )


def one_page_lines():
    tiers = [
        {"label": "tier", "tier": 0, "quantity": "1000", "unit_amount": "0", "flat_amount": "0", "amount": "0"},
        {
            "label": "tier",
            "tier": 1,
            "quantity": "4000",
            "unit_amount": "0.0025",
            "flat_amount": "0",
            "amount": "10.0000",
        },
    ]
    return [
        line("Pro base fee", "49.00", kind="base_fee", quantity=D(1), unit_amount=D("49")),
        line("Welcome coupon (10 %)", "-4.90", kind="discount", discount_of=0),
        line("API calls", "10.00", quantity=D(5000), breakdown=tiers),
        line("Storage GB-hours", "3.17", quantity=D("12680.5"), unit_amount=D("0.00025")),
        line("Seats", "24.50", kind="base_fee", quantity=D(5), unit_amount=D("4.9"), proration={"seconds": 1, "of": 2}),
    ]


@pytest.mark.django_db
def test_a_one_page_invoice_prints_its_figures_exactly(acme, storage):
    invoice = invoice_build(acme, one_page_lines(), credits="20.00")
    assert (invoice.subtotal, invoice.tax_total, invoice.total, invoice.amount_due) == (
        D("81.77"),
        D("15.54"),
        D("97.31"),
        D("77.31"),
    )
    [text] = pages_text(invoice_pdf_render(invoice=invoice))
    for expected in (
        "Seller GmbH",
        "Hauptstraße 1 10115 Berlin DE Tax ID: DE123456789 billing@seller.example",
        "BILL TO Acme GmbH Industriestraße 7 80331 München DE Tax ID: DE987654321 ap@acme.example",
        "Invoice number INV-000001 Issue date 1 May 2027 Due date 15 May 2027",
        f"Period {APRIL_TEXT}",  # the organization's month, in its timezone
        HEADER,
        f"Pro base fee {APRIL_TEXT} 1 €49.00 19%1 €49.00",
        f"Welcome coupon (10 %) {APRIL_TEXT} 19% -€4.90",
        f"API calls {APRIL_TEXT} 5,000 19%1 €10.00",
        "Tier 1 1,000 €0.00 €0.00 Tier 2 4,000 €0.0025 €10.00",  # pieces under their line
        f"Storage GB-hours {APRIL_TEXT} 12,680.5 €0.00025 19%1 €3.17",
        "prorated: 50% of the period",
        "VAT (DE) 19% €81.77 €15.54",  # the tax summary
        "Subtotal €81.77 Tax €15.54 Total €97.31 Credits applied -€20.00 Amount due €77.31",
        f"1 {STANDARD}",
        "Amtsgericht Berlin HRB 12345",
        "Page 1 of 1",
    ):
        assert expected in text, expected
    assert text.count(STANDARD) == 1  # a reason is printed once, however many lines it applies to


@pytest.mark.django_db
def test_a_reverse_charge_invoice_carries_the_legal_mention_once(in_a, storage):
    customer = OrganizationFactory(
        name="Client SARL", currency="EUR", country="FR", tax_id="FR40303265045", timezone="Europe/Paris"
    )
    invoice = invoice_build(
        customer,
        [
            line("Basic base fee", "30.00", kind="base_fee", rate="0", reason=REVERSE),
            line("API calls", "5.00", rate="0", reason=REVERSE),
        ],
    )
    [text] = pages_text(invoice_pdf_render(invoice=invoice))
    assert "Client SARL" in text and "Tax ID: FR40303265045" in text
    assert f"Basic base fee {APRIL_TEXT} 0%1 €30.00" in text
    assert "VAT (DE) 0% €35.00 €0.00" in text
    assert "Subtotal €35.00 Tax €0.00 Total €35.00 Amount due €35.00" in text
    assert text.count(REVERSE) == 1 and f"1 {REVERSE}" in text
    assert "Credits applied" not in text


@pytest.mark.django_db
def test_the_billing_runs_invoice_prints_the_snapshot_and_totals(world, storage):
    billing_run(at=utc(2027, 4, 1))
    calls("acme", utc(2027, 4, 3), utc(2027, 4, 4))
    billing_run(at=utc(2027, 4, 2))
    invoice = Invoice.objects.select_related("organization").get(number="INV-000001")
    [text] = pages_text(invoice_pdf_render(invoice=invoice))
    assert "Seller GmbH" in text and "Acme GmbH" in text
    assert f"Basic base fee {APRIL_TEXT} 1 €30.00 19%1 €30.00" in text
    assert "Subtotal €30.00 Tax €5.70 Total €35.70 Amount due €35.70" in text
    assert "Issue date 2 Apr 2027 Due date 16 Apr 2027" in text


@pytest.mark.django_db
def test_a_150_line_invoice_pages_cleanly(acme, storage):
    tiers = [
        {"label": "tier", "tier": 0, "quantity": "10", "unit_amount": "0", "flat_amount": "0", "amount": "0"},
        {"label": "tier", "tier": 1, "quantity": "5", "unit_amount": "1", "flat_amount": "2", "amount": "7"},
    ]
    specs = [
        line(f"Item {i:03d}", f"{i}.25", breakdown=tiers if i % 10 == 0 else [], quantity=D(15)) for i in range(1, 151)
    ]
    invoice = invoice_build(acme, specs)
    pages = pages_text(invoice_pdf_render(invoice=invoice))
    count = len(pages)
    assert count >= 3
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {count}" in text
        assert HEADER in text  # the table header repeats
        assert "Amtsgericht Berlin HRB 12345" in text  # the legal text is in every footer
    # every row whole on one page: its description, amount and its tier pieces together
    for i in range(1, 151):
        [page] = [text for text in pages if f"Item {i:03d} " in text]
        row = f"Item {i:03d} {APRIL_TEXT} 15 19%1 €{i:,}.25"
        assert row in page
        if i % 10 == 0:
            assert f"{row} Tier 1 10 €0.00 €0.00 Tier 2 5 €1.00 + €2.00 flat €7.00" in page
    # the totals close the last page, with the last lines, never alone
    subtotal = sum(D(f"{i}.25") for i in range(1, 151))
    assert (invoice.subtotal, invoice.total) == (subtotal, subtotal + invoice.tax_total)
    totals = f"Subtotal {euro(subtotal)} Tax {euro(invoice.tax_total)} Total {euro(invoice.total)}"
    assert [number for number, text in enumerate(pages, start=1) if totals in text] == [count]
    assert "Item 150 " in pages[-1]
    assert "Invoice INV-000001" in pages[1]  # the number heads the following pages


@pytest.mark.django_db
def test_the_totals_never_open_a_page_alone(acme, storage, monkeypatch):
    """For every length around a page's capacity the last page holds lines and the totals; the
    same lengths rendered without the rule (`.closing { break-before: avoid }`) show that some
    of them would otherwise put the totals alone on a page, so this test can fail."""
    without_rule = CSS(string=pdf_render.STYLESHEET.read_text() + ".closing { break-before: auto; }")
    alone = []
    for count in LENGTHS:
        invoice = invoice_build(acme, [line(f"Item {i:03d}", "1.00") for i in range(count)], number=f"INV-{count:06d}")
        last = pages_text(invoice_pdf_render(invoice=invoice))[-1]
        assert "Item " in last and "Amount due" in last, count
        with monkeypatch.context() as patched:
            patched.setattr(pdf_render, "_stylesheet", lambda: without_rule)
            if "Item " not in pages_text(invoice_pdf_render(invoice=invoice))[-1]:
                alone.append(count)
    assert alone


@pytest.mark.django_db
def test_the_lean_user_agent_stylesheet_prints_what_the_stock_one_does(acme, storage, monkeypatch):
    invoice = invoice_build(acme, one_page_lines(), credits="20.00")
    lean = pages_text(invoice_pdf_render(invoice=invoice))
    monkeypatch.setattr(pdf_render._InvoiceHTML, "_ua_stylesheets", HTML._ua_stylesheets)
    assert pages_text(invoice_pdf_render(invoice=invoice)) == lean


@pytest.mark.django_db
def test_a_draft_has_no_pdf_and_no_email(acme, storage):
    draft = invoice_build(acme, one_page_lines(), status="draft")
    for service in (invoice_pdf_render, invoice_pdf_store, invoice_email_send):
        with pytest.raises(DomainError) as error:
            service(invoice=draft)
        assert error.value.code == "invoice_not_final"
    draft.refresh_from_db()
    assert (draft.pdf.name, draft.pdf_sha256, draft.emailed_at) == ("", "", None)
    assert not storage.exists("invoices") and mail.outbox == []


@pytest.mark.django_db
def test_the_pdf_is_stored_once(acme, storage):
    invoice = invoice_build(acme, one_page_lines())
    stale = Invoice.objects.select_related("organization").get(pk=invoice.pk)
    with mock.patch.object(pdf_render, "invoice_pdf_render", wraps=invoice_pdf_render) as render:
        assert invoice_pdf_store(invoice=invoice) is invoice
        assert render.call_count == 1
    name = f"invoices/{connection.schema_name}/INV-000001.pdf"
    stored = Invoice.objects.get(pk=invoice.pk)
    assert stored.pdf.name == invoice.pdf.name == name
    with storage.open(name) as f:
        data = f.read()
    assert data.startswith(b"%PDF-") and stored.pdf_sha256 == hashlib.sha256(data).hexdigest()
    modified = storage.get_modified_time(name)

    with mock.patch.object(pdf_render, "invoice_pdf_render", side_effect=AssertionError("re-rendered")) as render:
        invoice_pdf_store(invoice=invoice)  # the instance knows its PDF
        invoice_pdf_store(invoice=stale)  # a stale instance: the re-check under the lock sees it
        assert render.call_count == 0
    assert stale.pdf.name == name and stale.pdf_sha256 == stored.pdf_sha256
    with storage.open(name) as f:
        assert f.read() == data
    assert storage.get_modified_time(name) == modified
    assert storage.listdir(f"invoices/{connection.schema_name}") == ([], ["INV-000001.pdf"])


@pytest.mark.django_db
def test_a_failed_render_stores_nothing(acme, storage):
    invoice = invoice_build(acme, one_page_lines())
    with mock.patch.object(pdf_render, "invoice_pdf_render", side_effect=RuntimeError("boom")):
        with pytest.raises(RuntimeError):
            invoice_pdf_store(invoice=invoice)
    invoice.refresh_from_db()
    assert (invoice.pdf.name, invoice.pdf_sha256) == ("", "")
    assert not storage.exists("invoices")


@pytest.mark.django_db
def test_the_email_goes_out_once_with_the_pdf(acme, storage):
    invoice = invoice_build(acme, one_page_lines(), credits="20.00")
    assert invoice_email_send(invoice=invoice) is True  # stores the PDF first when needed
    stored = Invoice.objects.get(pk=invoice.pk)
    assert stored.emailed_at is not None and stored.pdf.name == f"invoices/{connection.schema_name}/INV-000001.pdf"
    [message] = mail.outbox
    assert message.subject == "Invoice INV-000001 from Seller GmbH"
    assert message.to == ["ap@acme.example"] and message.reply_to == ["billing@seller.example"]
    with storage.open(stored.pdf.name) as f:
        assert message.attachments == [("INV-000001.pdf", f.read(), "application/pdf")]
    assert "Amount due: €77.31" in message.body and "Due date: 15 May 2027" in message.body
    [(html, kind)] = message.alternatives
    assert kind == "text/html" and "€77.31" in html and "15 May 2027" in html and "INV-000001" in html

    assert invoice_email_send(invoice=invoice) is False
    assert invoice_email_send(invoice=Invoice.objects.select_related("organization").get(pk=invoice.pk)) is False
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_no_billing_email_no_email(acme, storage, caplog):
    acme.billing_email = ""
    acme.save(update_fields=["billing_email"])
    invoice = invoice_build(acme, one_page_lines())
    with caplog.at_level(logging.INFO, logger="invoicing.services.invoice_email"):
        assert invoice_email_send(invoice=invoice) is False
    assert mail.outbox == [] and Invoice.objects.get(pk=invoice.pk).emailed_at is None
    assert "no billing email" in caplog.text


@pytest.mark.django_db
def test_a_failed_send_records_nothing(acme, storage):
    invoice = invoice_build(acme, one_page_lines())
    invoice_pdf_store(invoice=invoice)
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=ConnectionError("smtp down")):
        with pytest.raises(ConnectionError):
            invoice_email_send(invoice=invoice)
    assert mail.outbox == [] and Invoice.objects.get(pk=invoice.pk).emailed_at is None
    assert invoice_email_send(invoice=invoice) is True and len(mail.outbox) == 1  # the retry sends


@pytest.mark.django_db
def test_the_logo_comes_from_storage_and_nothing_from_the_network(acme, storage):
    png = io.BytesIO()
    Image.new("RGB", (120, 40), "#0b6e4f").save(png, format="PNG")
    storage.save("branding/logo.png", io.BytesIO(png.getvalue()))
    with_logo = invoice_build(acme, one_page_lines(), seller={"logo": "branding/logo.png"})
    [page] = PdfReader(io.BytesIO(invoice_pdf_render(invoice=with_logo))).pages
    assert len(page.images) == 1

    missing = invoice_build(acme, one_page_lines(), number="INV-000002", seller={"logo": "branding/gone.png"})
    [page] = PdfReader(io.BytesIO(invoice_pdf_render(invoice=missing))).pages
    assert len(page.images) == 0  # left out, logged; the invoice still renders

    fetcher = pdf_render.LocalFetcher()
    for url in ("http://example.com/logo.png", "https://example.com/a.css", "file:///etc/passwd", "ftp://x/y"):
        with pytest.raises(ValueError):
            fetcher(url)
    css = fetcher(pdf_render.STYLESHEET.as_uri())
    assert css.read().startswith(b"/* Invoice PDF")


@pytest.mark.django_db
def test_a_void_invoices_pdf_is_served_as_issued_with_a_void_stamp_on_every_page(acme, storage):
    from invoicing.services.invoice import invoice_void
    from invoicing.services.pdf_store import invoice_pdf_open

    specs = [line(f"Item {i:03d}", "1.00") for i in range(1, 61)]
    invoice = invoice_pdf_store(invoice=invoice_build(acme, specs))
    with invoice_pdf_open(invoice=invoice) as served:
        issued = served.read()
    pages = pages_text(issued)
    assert len(pages) >= 2 and not any("VOID" in text for text in pages)

    voided = invoice_void(actor=None, invoice=invoice, at=utc(2027, 5, 20, 22, 30))  # 21 May 00:30 in Berlin
    with invoice_pdf_open(invoice=Invoice.objects.get(pk=voided.pk)) as served:
        stamped = served.read()
    stamped_pages = pages_text(stamped)
    assert len(stamped_pages) == len(pages)
    stamp = "VOID · voided on 21 May 2027 · Invoice INV-000001 is not payable VOID"  # the line, the watermark
    assert stamped_pages == [f"{text} {stamp}" for text in pages]  # every page as issued, stamped
    assert "Item 001 " in stamped_pages[0] and "Item 060 " in stamped_pages[-1]
    # the stored document is the one issued: voiding rewrote nothing
    with storage.open(invoice.pdf.name, "rb") as f:
        assert f.read() == issued
    assert hashlib.sha256(issued).hexdigest() == Invoice.objects.get(pk=invoice.pk).pdf_sha256
