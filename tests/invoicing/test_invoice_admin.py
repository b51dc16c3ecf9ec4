"""Invoices, credit notes and the invoicing settings in the Django admin: read-only documents with
filters, search and a PDF link (served by a staff-only admin view), the "Finalize now" and "Void"
actions through the services (refusals shown as messages), and what each staff role may do."""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry
from django.core.files.base import ContentFile

from invoicing.models import CreditNote, Invoice, InvoicingSettings, NumberSequence
from invoicing.services.billing_run import billing_run
from invoicing.services.invoice import CreditNoteLineInput, credit_note_create
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, SubscriptionFactory
from tests.helpers import utc
from tests.invoicing.test_invoice_api import may_draft

LIST = "/admin/invoicing/invoice/"


@pytest.fixture
def invoices(world):
    """Acme: April open (INV-000001) and May a draft; Globex, subscribed on 15 April: its first
    invoice finalized on 16 April (INV-000002)."""
    may = may_draft(world)
    globex = OrganizationFactory(external_id="globex", name="Globex Corp", currency="EUR", country="DE")
    SubscriptionFactory(organization=globex, at=utc(2027, 4, 15))
    billing_run(at=utc(2027, 4, 16))  # made and, its grace over, finalized
    return {
        "april": Invoice.objects.get(number="INV-000001"),
        "may": may,
        "globex": Invoice.objects.get(organization=globex, bill_point=utc(2027, 4, 15)),
    }


def shown(page: str, invoice: Invoice) -> bool:
    return f"/admin/invoicing/invoice/{invoice.pk}/change/" in page


@pytest.mark.django_db
def test_list_filters_search_and_pdf_links(client_a, staff, invoices):
    staff("viewer")
    april, may, globex = invoices["april"], invoices["may"], invoices["globex"]
    assert globex.number == "INV-000002"

    page = client_a.get(LIST).content.decode()
    assert all(shown(page, i) for i in invoices.values())
    for invoice in (april, globex):
        assert f'href="/admin/invoicing/invoice/{invoice.pk}/pdf/">{invoice.number}.pdf</a>' in page
    assert f"/admin/invoicing/invoice/{may.pk}/pdf/" not in page  # a draft has none

    def listed(query):
        response = client_a.get(LIST + query)
        assert response.status_code == 200, response.content[:2000]
        page = response.content.decode()
        return {name for name, i in invoices.items() if shown(page, i)}

    assert listed("?status__exact=open") == {"april", "globex"}
    assert listed("?status__exact=draft") == {"may"}
    assert listed("?currency__exact=EUR") == {"april", "may", "globex"}
    assert listed("?currency__exact=USD") == set()
    # issued in a date range (the admin's date filter: issued_at__gte / __lt)
    utc_day = "{} 00:00:00%2B00:00".format
    assert listed(f"?issued_at__gte={utc_day('2027-04-02')}&issued_at__lt={utc_day('2027-04-03')}") == {"april"}
    assert listed(f"?issued_at__gte={utc_day('2027-04-10')}&issued_at__lt={utc_day('2027-05-01')}") == {"globex"}
    assert listed("?issued_at__isnull=True") == {"may"}
    assert listed("?q=INV-000002") == {"globex"}
    assert listed("?q=acme") == {"april", "may"}
    assert listed("?q=Globex") == {"globex"}


@pytest.mark.django_db
def test_detail_is_read_only_with_lines_and_the_pdf_link(client_a, staff, invoices):
    staff("finance")
    april, may = invoices["april"], invoices["may"]
    response = client_a.get(f"{LIST}{april.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="/admin/invoicing/invoice/{april.pk}/pdf/">INV-000001.pdf</a>' in page
    assert "Basic base fee" in page and "Seller GmbH" in page
    assert 'name="_save"' not in page, page[page.index('name="_save"') - 500 :][:1000]
    page = client_a.get(f"{LIST}{may.pk}/change/").content.decode()
    assert "API calls" in page and f"{may.pk}/pdf/" not in page

    audit = LogEntry.objects.count()
    assert client_a.get(f"{LIST}add/").status_code == 403
    assert client_a.post(f"{LIST}{april.pk}/change/", {"status": "void"}).status_code == 403
    assert client_a.get(f"{LIST}{april.pk}/delete/").status_code == 403
    assert client_a.post(f"{LIST}{april.pk}/delete/", {"post": "yes"}).status_code == 403
    april.refresh_from_db()
    assert april.status == "open" and LogEntry.objects.count() == audit


@pytest.mark.django_db
def test_pdf_admin_view_serves_the_stored_file_or_renders_it(client_a, staff, invoices, storage):
    staff("viewer")  # reading is enough
    april, may, globex = invoices["april"], invoices["may"], invoices["globex"]
    april.pdf.save("INV-000001.pdf", ContentFile(b"%PDF-1.4 stored"), save=True)
    response = client_a.get(f"{LIST}{april.pk}/pdf/")
    assert response.status_code == 200
    assert (response["Content-Type"], response["Content-Disposition"]) == (
        "application/pdf",
        'attachment; filename="INV-000001.pdf"',
    )
    assert b"".join(response.streaming_content) == b"%PDF-1.4 stored"

    response = client_a.get(f"{LIST}{may.pk}/pdf/", follow=True)
    assert response.redirect_chain == [(f"{LIST}{may.pk}/change/", 302)]
    assert "is a draft: it has a PDF once finalized" in response.content.decode()
    assert client_a.get(f"{LIST}999999/pdf/").status_code == 404
    assert client_a.get(f"{LIST}abc/pdf/").status_code == 404

    assert not globex.pdf
    response = client_a.get(f"{LIST}{globex.pk}/pdf/")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body.startswith(b"%PDF-")
    globex.refresh_from_db()
    assert globex.pdf_sha256 == hashlib.sha256(body).hexdigest()


@pytest.mark.django_db
def test_pdf_admin_view_is_for_staff_only(client_a, invoices, storage):
    april = invoices["april"]
    april.pdf.save("INV-000001.pdf", ContentFile(b"%PDF-1.4 stored"), save=True)
    url = f"{LIST}{april.pk}/pdf/"
    response = client_a.get(url)
    assert response.status_code == 302 and "application/pdf" not in response["Content-Type"]
    member = MembershipFactory(organization=april.organization)  # a customer of this very invoice
    response = client_a.post("/accounts/login/", {"login": member.user.email, "password": PASSWORD})
    assert response.status_code == 302
    response = client_a.get(url)
    assert response.status_code in (302, 403) and "application/pdf" not in response["Content-Type"]


def post_action(client, action, *invoices):
    return client.post(
        LIST, {"action": action, "_selected_action": [i.pk for i in invoices], "index": "0"}, follow=True
    )


@pytest.mark.django_db
def test_finalize_now_action(client_a, staff, invoices):
    april, may = invoices["april"], invoices["may"]
    with time_machine.travel(utc(2027, 5, 1, 8), tick=True):
        staff("finance")  # signed in inside the travel: sessions expire
        page = client_a.get(LIST).content.decode()
        assert 'value="finalize_now"' in page and 'value="void"' in page
        response = post_action(client_a, "finalize_now", may, april)
    page = response.content.decode()
    may.refresh_from_db()
    assert (may.status, may.number) == ("open", "INV-000003")
    assert may.issued_at.date() == utc(2027, 5, 1).date()
    assert "1 invoice(s) finalized." in page
    assert "INV-000001: Invoice INV-000001 is already finalized." in page


@pytest.mark.django_db
def test_finalize_now_reports_a_tax_problem(client_a, staff, world):
    nowhere = OrganizationFactory(external_id="nowhere", currency="EUR", country="")
    SubscriptionFactory(organization=nowhere, at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 4, 3))
    held = Invoice.objects.get(organization=nowhere)
    assert held.status == "draft"
    with time_machine.travel(utc(2027, 4, 3), tick=True):
        staff("admin")
        page = post_action(client_a, "finalize_now", held).content.decode()
    held.refresh_from_db()
    assert held.status == "draft" and held.number is None
    assert f"Draft {held.pk}: The invoice cannot be finalized: it has a tax problem: customer_location_required" in page
    assert NumberSequence.objects.get(prefix="INV-").last_value == 1  # acme's April only


@pytest.mark.django_db
def test_void_action_and_its_refusals(client_a, staff, invoices):
    april, may = invoices["april"], invoices["may"]
    with time_machine.travel(utc(2027, 5, 1, 8), tick=True):
        user = staff("finance")
        audit = LogEntry.objects.count()
        # the action first shows what voiding does, and each invoice's number and total
        confirm = post_action(client_a, "void", april, may)
        assert confirm.status_code == 200 and confirm.redirect_chain == []
        text = confirm.content.decode()
        assert "Voiding these invoices cannot be undone" in text and "its amount due becomes zero" in text
        assert "<td>INV-000001</td>" in text and "€35.70" in text and "(cannot be voided)" in text
        assert 'name="post" value="yes"' in text and 'value="Void 2 invoices"' in text
        april.refresh_from_db()
        assert april.status == "open" and LogEntry.objects.count() == audit  # nothing done yet
        page = client_a.post(
            LIST, {"action": "void", "_selected_action": [april.pk, may.pk], "post": "yes"}, follow=True
        ).content.decode()
    april.refresh_from_db()
    may.refresh_from_db()
    assert (april.status, april.amount_due, may.status) == ("void", 0, "draft")
    assert "1 invoice(s) voided." in page
    assert f"Draft {may.pk}: Only an open or uncollectible invoice can be voided; Draft {may.pk} is draft." in page
    entry = LogEntry.objects.get_for_object(april).order_by("-id").first()
    assert entry.changes_dict["status"] == ["open", "void"] and entry.actor == user


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "support"])
def test_read_only_roles_cannot_run_actions(client_a, staff, invoices, role):
    staff(role)
    april, may = invoices["april"], invoices["may"]
    page = client_a.get(LIST).content.decode()
    assert 'value="finalize_now"' not in page and 'value="void"' not in page
    assert client_a.get(f"{LIST}{april.pk}/change/").status_code == 200
    audit = LogEntry.objects.count()
    for action in ("finalize_now", "void"):
        post_action(client_a, action, april, may)
    client_a.post(LIST, {"action": "void", "_selected_action": [april.pk], "post": "yes"})
    assert client_a.get(f"{LIST}{april.pk}/void/").status_code == 403
    assert client_a.post(f"{LIST}{april.pk}/void/").status_code == 403
    april.refresh_from_db()
    may.refresh_from_db()
    assert (april.status, may.status) == ("open", "draft")
    assert LogEntry.objects.count() == audit


@pytest.mark.django_db
def test_credit_note_admin_is_read_only_with_lines(client_a, staff, invoices):
    april = invoices["april"]
    fee = april.lines.get()
    note = credit_note_create(
        actor=None,
        invoice=april,
        reason="Outage",
        lines=[CreditNoteLineInput(invoice_line_id=fee.pk, amount=Decimal("30.00"))],
    )
    staff("finance")
    page = client_a.get("/admin/invoicing/creditnote/").content.decode()
    assert "CN-000001" in page and "INV-000001" in page
    assert "CN-000001" in client_a.get("/admin/invoicing/creditnote/?q=acme").content.decode()
    page = client_a.get(f"/admin/invoicing/creditnote/{note.pk}/change/").content.decode()
    assert "Basic base fee" in page and "Outage" in page and 'name="_save"' not in page
    assert client_a.get("/admin/invoicing/creditnote/add/").status_code == 403
    assert client_a.get(f"/admin/invoicing/creditnote/{note.pk}/delete/").status_code == 403
    # the invoice shows its credit notes
    assert "CN-000001" in client_a.get(f"{LIST}{april.pk}/change/").content.decode()
    assert CreditNote.objects.count() == 1


SETTINGS_FORM = {
    "seller_name": "Seller GmbH",
    "seller_address": "Hauptstraße 1\n10115 Berlin",
    "seller_country": "DE",
    "seller_region": "",
    "seller_tax_id": "DE123456789",
    "tax_registrations": "DE,EU-OSS",
    "us_taxability": "{}",
    "grace_hours": "48",
    "payment_terms_days": "30",
    "number_prefix": "INV-",
    "credit_note_prefix": "CN-",
}


@pytest.mark.django_db
def test_settings_are_a_singleton_changed_by_finance(client_a, staff, in_a):
    InvoicingSettings.objects.all().delete()
    staff("finance")
    response = client_a.get("/admin/invoicing/invoicingsettings/")
    assert response.status_code == 302 and response["Location"] == "/admin/invoicing/invoicingsettings/1/change/"
    assert client_a.get("/admin/invoicing/invoicingsettings/add/").status_code == 403
    assert client_a.get("/admin/invoicing/invoicingsettings/1/delete/").status_code == 403
    page = client_a.get("/admin/invoicing/invoicingsettings/1/change/").content.decode()
    for field in ("seller_name", "tax_registrations", "prices_include_tax", "grace_hours", "payment_terms_days"):
        assert f'name="{field}"' in page
    response = client_a.post("/admin/invoicing/invoicingsettings/1/change/", SETTINGS_FORM)
    assert response.status_code == 302, response.content.decode()[:3000]
    settings = InvoicingSettings.objects.get()
    assert (settings.grace_hours, settings.payment_terms_days, settings.tax_registrations) == (48, 30, ["DE", "EU-OSS"])
    assert (settings.seller_tax_id, settings.prices_include_tax) == ("DE123456789", False)
    assert LogEntry.objects.get_for_object(settings).filter(action=LogEntry.Action.UPDATE).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tax_registrations": "DE,XX"}, "Unknown registration &#x27;XX&#x27;."),
        ({"tax_registrations": "CA-ON"}, "only BC, SK, MB and QC have a provincial tax"),
        ({"seller_country": "ZZ"}, "Origin country &#x27;ZZ&#x27; is not an ISO 3166-1 code."),
        ({"us_taxability": '{"ZZ": false}'}, "US taxability override for unknown state"),
        ({"us_taxability": "[1]"}, "Use an object of states"),
        ({"grace_hours": "-1"}, "Ensure this value is greater than or equal to 0."),
        ({"number_prefix": "INV 2027"}, "Enter a valid value."),
    ],
)
def test_settings_refuse_what_the_tax_engine_refuses(client_a, staff, in_a, change, message):
    staff("finance")
    InvoicingSettings.objects.update_or_create(pk=1, defaults={"seller_country": "DE", "tax_registrations": ["DE"]})
    audit = LogEntry.objects.count()
    response = client_a.post("/admin/invoicing/invoicingsettings/1/change/", {**SETTINGS_FORM, **change})
    assert response.status_code == 200
    assert message in response.content.decode()
    settings = InvoicingSettings.objects.get()
    assert (settings.tax_registrations, settings.grace_hours) == (["DE"], 24)
    assert LogEntry.objects.count() == audit


@pytest.mark.django_db
def test_viewer_reads_the_settings_but_cannot_change_them(client_a, staff, in_a):
    InvoicingSettings.objects.update_or_create(pk=1, defaults={"seller_country": "DE", "tax_registrations": ["DE"]})
    staff("viewer")
    page = client_a.get("/admin/invoicing/invoicingsettings/1/change/").content.decode()
    assert 'name="_save"' not in page and "DE" in page
    assert client_a.post("/admin/invoicing/invoicingsettings/1/change/", SETTINGS_FORM).status_code == 403
    assert InvoicingSettings.objects.get().grace_hours == 24


@pytest.mark.django_db
def test_void_one_invoice_from_its_page_after_a_confirmation(client_a, staff, invoices, storage):
    april = invoices["april"]
    with time_machine.travel(utc(2027, 5, 1, 8), tick=True):
        user = staff("admin")
        url = f"{LIST}{april.pk}/void/"
        assert f'href="{url}"' in client_a.get(f"{LIST}{april.pk}/change/").content.decode()
        confirm = client_a.get(url)
        assert confirm.status_code == 200
        text = confirm.content.decode()
        assert "Voiding this invoice cannot be undone" in text and "marked <strong>VOID</strong>" in text
        # amounts as people read them: euros with two decimals, not the stored four
        assert f"€{april.total:,.2f}" in text and f"{april.total} EUR" not in text
        assert 'value="Void INV-000001"' in text
        april.refresh_from_db()
        assert april.status == "open"
        response = client_a.post(url)
    assert response.status_code == 302 and response["Location"] == f"{LIST}{april.pk}/change/"
    april.refresh_from_db()
    assert (april.status, april.amount_due) == ("void", 0)
    entry = LogEntry.objects.get_for_object(april).order_by("-id").first()
    assert entry.changes_dict["status"] == ["open", "void"] and entry.actor == user
    # a void invoice offers no second void; its PDF says VOID with the date
    assert f'href="{url}"' not in client_a.get(f"{LIST}{april.pk}/change/").content.decode()
    again = client_a.post(url, follow=True)
    assert "Only an open or uncollectible invoice can be voided" in again.content.decode()
    pdf = client_a.get(f"{LIST}{april.pk}/pdf/")
    assert pdf.status_code == 200
    from pypdf import PdfReader

    text = " ".join(PdfReader(io.BytesIO(b"".join(pdf.streaming_content))).pages[0].extract_text().split())
    assert "VOID · voided on 1 May 2027 · Invoice INV-000001 is not payable" in text
