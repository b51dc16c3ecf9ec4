"""Bank transfers: the invoice's creditor reference and the seller's bank details (on the PDF and
in the email), transfers recorded through the ledger (partial, exact, over; paid once), statement
imports matched by reference and amount (each line once), and the payment emails."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.core import mail
from django.core.exceptions import ValidationError

from accounts.models import User  # noqa: F401  (the audit log's actor model)
from billing.models import CreditEntry
from core.errors import DomainError
from core.models import OutboxMessage
from core.money import Money
from core.services.outbox import outbox_process
from invoicing.models import Invoice, InvoicingSettings
from invoicing.remittance import payment_reference, reference_format, references_in, validate_iban
from invoicing.services.invoice import invoice_void
from payments.gateways.base import ChargeResult, ChargeStatus
from payments.models import BankTransfer, Payment, PaymentEmail, StatementImport, StatementLine
from payments.services.bank_statement import ColumnMap, statement_import, statement_line_assign, statement_parse
from payments.services.bank_transfer import bank_transfer_record
from payments.services.ledger import payment_result_record
from tests.invoicing.test_invoice_api import april_open
from tests.invoicing.test_pdf import pages_text

D = Decimal
IBAN = "DE89370400440532013000"


@pytest.fixture
def banked(world):
    InvoicingSettings.objects.filter(pk=1).update(
        bank_account_holder="Seller GmbH", bank_name="Commerzbank", bank_iban=IBAN, bank_bic="COBADEFFXXX"
    )
    world[0].billing_email = "billing@acme.example"
    world[0].save()
    return world


def receipts() -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(kind="payments.receipt").order_by("id"))


# --- the reference ------------------------------------------------------------------------------


def test_reference_is_iso11649_from_the_number_and_found_however_typed():
    assert payment_reference("INV-000123") == "RF73INV000123"
    assert reference_format("RF73INV000123") == "RF73 INV0 0012 3"
    assert references_in("Payment rf73 inv0 0012 3 thank you") == ["RF73INV000123"]
    # glued to what follows, every checksum-valid length is a candidate (the invoices decide)
    assert references_in("SEPA RF73INV000123/ACME") == ["RF73INV000123", "RF73INV000123AC"]
    # a typo fails the checksum: no reference, rather than someone else's invoice
    assert references_in("RF73INV000124") == []
    assert references_in("invoice INV-000123") == []
    # a long number keeps its last 21 characters
    assert payment_reference("ACME/EUROPE/2027/INV-000001") == payment_reference("MEEUROPE2027INV000001")


def test_bank_details_are_validated_with_stdnum():
    validate_iban("DE89 3704 0044 0532 0130 00")
    with pytest.raises(ValidationError):
        validate_iban("DE89370400440532013001")


# --- on the invoice -----------------------------------------------------------------------------


def test_finalizing_gives_the_reference_and_prints_the_instructions(banked, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    invoice = april_open(banked)
    assert invoice.number == "INV-000001" and invoice.payment_reference == payment_reference("INV-000001")
    assert invoice.seller["bank"]["iban"] == IBAN
    from invoicing.pdf_render import invoice_pdf_render

    text = " ".join(pages_text(invoice_pdf_render(invoice=invoice)))
    assert "Pay by bank transfer" in text
    assert reference_format(invoice.payment_reference) in text and "DE89 3704 0044 0532 0130 00" in text
    assert "COBADEFFXXX" in text
    outbox_process(ids=list(OutboxMessage.objects.filter(kind="invoice.deliver").values_list("pk", flat=True)))
    [message] = mail.outbox
    assert f"Reference: {reference_format(invoice.payment_reference)}" in message.body
    assert "IBAN: DE89 3704 0044 0532 0130 00" in message.body


def test_no_bank_account_no_instructions(world):
    invoice = april_open(world)
    from invoicing.remittance import remittance_rows

    assert invoice.payment_reference and invoice.seller["bank"] == {} and remittance_rows(invoice) == []


# --- recording a transfer -----------------------------------------------------------------------


def test_partial_then_rest_then_excess_pays_once_and_credits_the_rest(banked):
    invoice = april_open(banked)  # 35.70 EUR due
    first = bank_transfer_record(
        actor=None, invoice_id=invoice.pk, amount=Money(D("20.00"), "EUR"), received_on=date(2027, 4, 10)
    )
    invoice.refresh_from_db()
    assert (first.outcome, first.credited) == ("partial", D("0"))
    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == ("open", D("15.70"), D("20.00"))
    second = bank_transfer_record(
        actor=None, invoice_id=invoice.pk, amount=Money(D("15.70"), "EUR"), received_on=date(2027, 4, 11)
    )
    invoice.refresh_from_db()
    assert second.outcome == "paid" and (invoice.status, invoice.amount_due) == ("paid", D("0"))
    third = bank_transfer_record(
        actor=None, invoice_id=invoice.pk, amount=Money(D("5.00"), "EUR"), received_on=date(2027, 4, 12)
    )
    assert (third.outcome, third.credited) == ("overpaid", D("5.00"))
    payments = list(Payment.objects.order_by("number").values_list("number", "gateway", "status", "settled_invoice"))
    assert payments == [
        (1, "bank_transfer", "succeeded", False),
        (2, "bank_transfer", "succeeded", True),
        (3, "bank_transfer", "succeeded", False),
    ]
    [credit] = CreditEntry.objects.filter(organization=banked[0])
    assert (credit.kind, credit.amount, credit.currency) == ("purchase", D("5.00"), "EUR")
    assert BankTransfer.objects.count() == 3 and len(receipts()) == 3
    events = LogEntry.objects.filter(changes__event__1="payment.bank_transfer_recorded").count()
    assert events == 3


def test_overpayment_in_one_transfer_pays_and_credits(banked):
    invoice = april_open(banked)
    recorded = bank_transfer_record(
        actor=None, invoice_id=invoice.pk, amount=Money(D("40.00"), "EUR"), received_on=date(2027, 4, 10)
    )
    invoice.refresh_from_db()
    assert (recorded.outcome, recorded.credited, invoice.status) == ("overpaid", D("4.30"), "paid")
    assert list(CreditEntry.objects.values_list("amount", flat=True)) == [D("4.30")]


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (Money(D("10.00"), "USD"), "currency_mismatch"),
        (Money(D("10.005"), "EUR"), "invalid_amount"),
        (Money(D("0"), "EUR"), "invalid_amount"),
    ],
)
def test_refused_transfers_write_nothing(banked, amount, code):
    invoice = april_open(banked)
    before = OutboxMessage.objects.count()
    with pytest.raises(DomainError) as caught:
        bank_transfer_record(actor=None, invoice_id=invoice.pk, amount=amount, received_on=date(2027, 4, 10))
    assert caught.value.code == code
    invoice.refresh_from_db()
    assert (invoice.amount_due, Payment.objects.count(), BankTransfer.objects.count()) == (D("35.70"), 0, 0)
    assert OutboxMessage.objects.count() == before


def test_a_void_invoice_takes_no_transfer(banked):
    invoice = april_open(banked)
    invoice_void(actor=None, invoice=invoice)
    with pytest.raises(DomainError) as caught:
        bank_transfer_record(
            actor=None, invoice_id=invoice.pk, amount=Money(D("35.70"), "EUR"), received_on=date(2027, 4, 10)
        )
    assert caught.value.code == "invoice_not_payable" and not Payment.objects.exists()


# --- statement import ---------------------------------------------------------------------------


def _statement(invoice: Invoice, *rows: str) -> bytes:
    ref = reference_format(invoice.payment_reference).lower()
    return ("date,amount,currency,description,counterparty\n" + "\n".join(rows).replace("{ref}", ref)).encode()


def test_statement_lines_are_matched_once_and_unmatched_ones_wait_for_a_person(banked):
    invoice = april_open(banked)
    data = _statement(
        invoice,
        "2027-04-09,9.00,USD,{ref},Acme Inc",
        "2027-04-10,20.00,EUR,Payment {ref} part 1,Acme GmbH",
        "2027-04-10,20.00,EUR,Payment {ref} part 1,Acme GmbH",  # the same again that day: a second line
        "2027-04-11,-50.00,EUR,Office rent,Landlord",
        "2027-04-11,12.00,EUR,no reference here,Someone",
    )
    record = statement_import(actor=None, file_name="april.csv", data=data)
    assert (record.lines_read, record.lines_new, record.lines_matched, record.lines_unmatched) == (5, 5, 2, 2)
    lines = list(StatementLine.objects.order_by("row_number").values_list("outcome", "invoice_id"))
    assert lines == [
        ("unmatched", None),
        ("partial", invoice.pk),
        ("overpaid", invoice.pk),
        ("ignored", None),
        ("unmatched", None),
    ]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", D("35.70"))
    assert list(CreditEntry.objects.values_list("amount", flat=True)) == [D("4.30")]
    assert StatementLine.objects.get(row_number=2).reason == f"Invoice {invoice.number} is in EUR."
    assert StatementLine.objects.get(row_number=6).reason == "No invoice reference in the description."
    # the same file again: nothing new, no second payment
    again = statement_import(actor=None, file_name="april.csv", data=data)
    assert (again.lines_read, again.lines_new, again.lines_matched) == (5, 0, 0)
    assert (StatementLine.objects.count(), Payment.objects.count(), StatementImport.objects.count()) == (5, 2, 2)


def test_exact_amount_pays_and_a_person_assigns_an_unmatched_line(banked):
    invoice = april_open(banked)
    record = statement_import(
        actor=None, file_name="s.csv", data=_statement(invoice, "2027-04-10,35.70,EUR,transfer,Acme GmbH")
    )
    assert record.lines_unmatched == 1
    line = StatementLine.objects.get()
    recorded = statement_line_assign(actor=None, line_id=line.pk, invoice_id=invoice.pk)
    line.refresh_from_db()
    invoice.refresh_from_db()
    assert (recorded.outcome, line.outcome, line.invoice_id, invoice.status) == ("paid", "paid", invoice.pk, "paid")
    assert line.transfer.payment == recorded.payment and line.resolved_at is not None
    with pytest.raises(DomainError) as caught:
        statement_line_assign(actor=None, line_id=line.pk, invoice_id=invoice.pk)
    assert caught.value.code == "line_resolved" and Payment.objects.count() == 1


def test_exact_match_by_reference(banked):
    invoice = april_open(banked)
    statement_import(actor=None, file_name="s.csv", data=_statement(invoice, "2027-04-10,35.70,EUR,{ref},Acme"))
    assert StatementLine.objects.get().outcome == "paid"
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


def test_a_mapped_bank_export_with_decimal_commas():
    data = b"Buchungstag;Betrag;Verwendungszweck;Auftraggeber\n30.04.2027;1.234,56;RF73 INV0 0012 3;Acme\n"
    columns = ColumnMap(
        date="Buchungstag",
        amount="betrag",
        currency="",
        description="Verwendungszweck",
        counterparty="Auftraggeber",
        date_format="%d.%m.%Y",
        decimal_comma=True,
        default_currency="EUR",
    )
    [row] = statement_parse(data, columns=columns)
    assert (row.booked_on, row.amount, row.currency, row.description, row.counterparty) == (
        date(2027, 4, 30),
        D("1234.56"),
        "EUR",
        "RF73 INV0 0012 3",
        "Acme",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("date,amount,currency,description\n2027-04-10,1e3,EUR,x\n", "Row 2: the amount must be a decimal"),
        ("date,amount,currency,description\n10/04/2027,1.00,EUR,x\n", "Row 2: the date is not 2027-04-30"),
        ("date,amount,currency,description\n2027-04-10,1.00,XXX1,x\n", "Row 2: 'XXX1' is not a currency"),
        ("day,amount,currency,description\n", 'No column "date"'),
    ],
)
def test_a_malformed_statement_writes_nothing(in_a, body, message):
    with pytest.raises(DomainError) as caught:
        statement_import(actor=None, file_name="bad.csv", data=body.encode())
    assert caught.value.code == "invalid_statement" and caught.value.message.startswith(message)
    assert not StatementImport.objects.exists() and not StatementLine.objects.exists()


# --- emails -------------------------------------------------------------------------------------


def test_a_receipt_is_emailed_once_with_the_money_and_the_billing_link(banked):
    invoice = april_open(banked)
    bank_transfer_record(
        actor=None, invoice_id=invoice.pk, amount=Money(D("35.70"), "EUR"), received_on=date(2027, 4, 10)
    )
    [message] = receipts()
    assert message.key == f"receipt:{Payment.objects.get().pk}"
    mail.outbox.clear()
    outbox_process(ids=[message.pk])
    [email] = mail.outbox
    assert (
        email.to == ["billing@acme.example"]
        and email.subject == f"Receipt for invoice {invoice.number} from Seller GmbH"
    )
    assert "Amount paid: €35.70" in email.body and "Paid on: 10 Apr 2027" in email.body
    assert "Payment method: Bank transfer" in email.body and "The invoice is paid in full." in email.body
    assert "http://alpha.localhost:8000/organizations/acme/billing/" in email.body
    # the message run again (at least once): no second email
    from payments.services.emails import payment_email_send

    assert payment_email_send(payment_id=Payment.objects.get().pk, kind=PaymentEmail.Kind.RECEIPT) is False
    assert len(mail.outbox) == 1 and PaymentEmail.objects.count() == 1


def test_requires_action_emails_a_link_to_finish_on_the_portal(banked):
    invoice = april_open(banked)
    payment = Payment.objects.create(
        invoice=invoice,
        organization=banked[0],
        number=1,
        idempotency_key=f"inv{invoice.pk}-1",
        gateway="stripe",
        method_type="card",
        amount=invoice.amount_due,
        currency="EUR",
    )
    result = ChargeResult(id="pi_3ds", status=ChargeStatus.REQUIRES_ACTION, amount=Money(invoice.amount_due, "EUR"))
    assert payment_result_record(payment_id=payment.pk, result=result) is True
    assert payment_result_record(payment_id=payment.pk, result=result) is False  # the same answer again
    [message] = OutboxMessage.objects.filter(kind="payments.action_required")
    mail.outbox.clear()
    outbox_process(ids=[message.pk])
    [email] = mail.outbox
    assert email.subject == f"Action needed to pay invoice {invoice.number} from Seller GmbH"
    assert "€35.70" in email.body and "3-D Secure" in email.body
    assert "http://alpha.localhost:8000/organizations/acme/billing/" in email.body
    assert not receipts()


def test_no_action_email_once_the_payment_went_through(banked):
    invoice = april_open(banked)
    payment = Payment.objects.create(
        invoice=invoice,
        organization=banked[0],
        number=1,
        idempotency_key=f"inv{invoice.pk}-1",
        gateway="stripe",
        method_type="card",
        amount=invoice.amount_due,
        currency="EUR",
    )
    money = Money(invoice.amount_due, "EUR")
    payment_result_record(
        payment_id=payment.pk, result=ChargeResult(id="pi_x", status=ChargeStatus.REQUIRES_ACTION, amount=money)
    )
    payment_result_record(
        payment_id=payment.pk, result=ChargeResult(id="pi_x", status=ChargeStatus.SUCCEEDED, amount=money)
    )
    mail.outbox.clear()
    outbox_process(ids=list(OutboxMessage.objects.filter(kind__startswith="payments.").values_list("pk", flat=True)))
    assert [m.subject.split(" from")[0] for m in mail.outbox] == [f"Receipt for invoice {invoice.number}"]
