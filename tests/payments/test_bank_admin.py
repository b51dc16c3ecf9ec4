"""The bank-transfer admin pages: record a transfer, import a statement, assign an unmatched
line, and the bank details in the invoicing settings (validated with python-stdnum)."""

from __future__ import annotations

from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile

from invoicing.models import Invoice, InvoicingSettings
from invoicing.remittance import reference_format
from payments.models import BankTransfer, Payment, StatementLine
from tests.invoicing.test_invoice_api import april_open

D = Decimal


def test_finance_records_a_partial_transfer(client_a, staff, world):
    invoice = april_open(world)
    user = staff("finance")
    response = client_a.post(
        "/admin/payments/banktransfer/add/",
        {"invoice": invoice.number, "amount": "10.00", "received_on": "2027-04-10", "reference": "acme", "note": ""},
    )
    payment = Payment.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/payments/payment/{payment.pk}/change/"
    assert (payment.gateway, payment.amount, payment.status) == ("bank_transfer", D("10.00"), "succeeded")
    assert BankTransfer.objects.get().recorded_by == user
    assert Invoice.objects.get(pk=invoice.pk).amount_due == D("25.70")


def test_a_refused_transfer_shows_the_error_and_writes_nothing(client_a, staff, world):
    invoice = april_open(world)
    staff("finance")
    response = client_a.post(
        "/admin/payments/banktransfer/add/",
        {"invoice": invoice.number, "amount": "1e3", "received_on": "2027-04-10"},
    )
    assert response.status_code == 200 and b"must be a decimal string" in response.content
    response = client_a.post(
        "/admin/payments/banktransfer/add/", {"invoice": "INV-999999", "amount": "1.00", "received_on": "2027-04-10"}
    )
    assert response.status_code == 200 and b"No invoice numbered INV-999999" in response.content
    assert not Payment.objects.exists()


def test_support_cannot_record_a_transfer(client_a, staff, world):
    invoice = april_open(world)
    staff("support")
    response = client_a.post(
        "/admin/payments/banktransfer/add/", {"invoice": invoice.number, "amount": "1.00", "received_on": "2027-04-10"}
    )
    assert response.status_code == 403 and not Payment.objects.exists()


def test_statement_upload_then_assign_the_unmatched_line(client_a, staff, world):
    invoice = april_open(world)
    staff("finance")
    ref = reference_format(invoice.payment_reference)
    csv = (
        f"date,amount,currency,description,counterparty\n2027-04-10,5.70,EUR,{ref},Acme\n2027-04-11,30.00,EUR,x,Acme\n"
    )
    form = {
        "file": SimpleUploadedFile("s.csv", csv.encode(), content_type="text/csv"),
        "date_column": "date",
        "amount_column": "amount",
        "currency_column": "currency",
        "description_column": "description",
        "counterparty_column": "counterparty",
        "date_format": "%Y-%m-%d",
    }
    response = client_a.post("/admin/payments/statementimport/add/", form)
    assert response.status_code == 302
    assert list(StatementLine.objects.order_by("row_number").values_list("outcome", flat=True)) == [
        "partial",
        "unmatched",
    ]
    unmatched = StatementLine.objects.get(outcome="unmatched")
    page = client_a.get("/admin/payments/statementline/?outcome__exact=unmatched").content.decode()
    assert f"/admin/payments/statementline/{unmatched.pk}/assign/" in page
    response = client_a.post(f"/admin/payments/statementline/{unmatched.pk}/assign/", {"invoice": invoice.number})
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", D("35.70"))
    assert StatementLine.objects.get(pk=unmatched.pk).outcome == "paid"


def test_bank_details_are_validated_and_stored_compact(client_a, staff, in_a):
    staff("owner")
    InvoicingSettings.objects.get_or_create(pk=1)
    base = {
        "seller_name": "Seller",
        "tax_registrations": "",
        "us_taxability": "{}",
        "grace_hours": 24,
        "payment_terms_days": 14,
        "number_prefix": "INV-",
        "credit_note_prefix": "CN-",
        "bank_account_holder": "Seller GmbH",
    }
    url = "/admin/invoicing/invoicingsettings/1/change/"
    response = client_a.post(url, {**base, "bank_iban": "DE89 3704 0044 0532 0130 01"})
    assert response.status_code == 200 and b"Not a valid IBAN" in response.content
    response = client_a.post(url, {**base, "bank_account_number": "12345678", "bank_routing_number": "111000026"})
    assert response.status_code == 200 and b"Not a valid US routing number" in response.content
    assert InvoicingSettings.objects.get().bank_iban == ""
    response = client_a.post(url, {**base, "bank_iban": "de89 3704 0044 0532 0130 00", "bank_bic": "cobadeffxxx"})
    assert response.status_code == 302
    row = InvoicingSettings.objects.get()
    assert (row.bank_iban, row.bank_bic) == ("DE89370400440532013000", "COBADEFFXXX")
