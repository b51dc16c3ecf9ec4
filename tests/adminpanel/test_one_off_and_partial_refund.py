"""Customer 360's one-off charge and partial refund, on the invoicing tests' world (Acme on Basic,
30.00 EUR + 19 % VAT, April's invoice) and the fake Stripe gateway: each previewed with its money
effect (nothing written), done on the confirm through the services, audited with the staff user,
refused (role, malformed input, too much) with nothing written."""

from __future__ import annotations

from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from billing.models import CreditEntry
from billing.services.credit import credit_grant
from core.models import OutboxMessage
from invoicing.models import CreditNote, Invoice, InvoiceLine
from payments.models import Payment, PaymentCustomer, Refund
from tests.adminpanel.test_money_actions import effect, fingerprint
from tests.invoicing.conftest import storage, world  # noqa: F401
from tests.invoicing.test_invoice_api import april_open
from tests.payments.conftest import CARD_OK, collect_all, connected, fake_stripe, localstripe_url, payer_with  # noqa: F401

pytestmark = pytest.mark.django_db
PAGE = "/staff/organizations/acme/"
CHARGE = PAGE + "one-off-charges/"
REFUND = PAGE + "refunds/"


def events(instance) -> list[tuple[str, object]]:
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(instance), object_id=instance.pk
    ).order_by("pk")
    return [(e.changes["event"][1], e.actor) for e in entries if "event" in e.changes]


def snapshot() -> tuple:
    return (
        list(Invoice.objects.order_by("pk").values_list("pk", "status", "amount_due")),
        InvoiceLine.objects.count(),
        CreditNote.objects.count(),
        CreditEntry.objects.count(),
        Refund.objects.count(),
        list(Payment.objects.order_by("pk").values_list("pk", "status", "amount_refunded")),
        OutboxMessage.objects.count(),
        LogEntry.objects.count(),
    )


def test_one_off_charge_previews_then_invoices_and_collects(world, connected, client_a, staff):  # noqa: F811
    payer_with(world[0], connected, card=CARD_OK)
    user = staff("finance")
    form = {"description": "Onboarding workshop", "amount": "100.00"}
    before = snapshot()
    body = client_a.post(CHARGE, form).content.decode()
    assert effect(body) == [
        ("Invoices issued so far", "0"),
        ("Charge", "Onboarding workshop"),
        ("Net", "€100.00"),
        ("Tax", "€19.00, rate 19 % (DE)"),
        ("Invoice total", "€119.00"),
        ("Paid from the credit balance", "€0.00"),
        ("Amount due", "€119.00"),
        ("Collection", "charged to the default payment method"),
    ]
    assert snapshot() == before  # the preview wrote nothing
    response = client_a.post(CHARGE, {**form, "confirm": fingerprint(body)})
    assert response.status_code == 302
    invoice = Invoice.objects.get()
    [line] = invoice.lines.all()
    assert (invoice.subscription, invoice.status, invoice.total, invoice.amount_due, invoice.number is not None) == (
        None,
        "open",
        Decimal("119.0000"),
        Decimal("119.0000"),
        True,
    )
    assert (line.kind, line.description, line.net_amount, line.tax_amount, line.period_start) == (
        "one_off",
        "Onboarding workshop",
        Decimal("100.0000"),
        Decimal("19.0000"),
        invoice.issued_at,
    )
    assert invoice.customer["name"] == "Acme GmbH"
    assert events(invoice) == [("invoice.one_off_created", user), ("invoice.finalized", user)]
    # collected as the organization's setting says: automatically, from the card
    collect_all()
    invoice.refresh_from_db()
    payment = Payment.objects.get()
    assert (invoice.status, payment.status, payment.amount) == ("paid", "succeeded", Decimal("119.0000"))
    # the same confirm again (a double click): the effect changed, shown again, nothing charged
    response = client_a.post(CHARGE, {**form, "confirm": fingerprint(body)})
    assert response.status_code == 200
    assert ("Invoices issued so far", "1") in effect(response.content.decode())
    assert Invoice.objects.count() == 1


def test_one_off_charge_manual_collection_and_credit(world, client_a, staff):  # noqa: F811
    organization = world[0]
    PaymentCustomer.objects.create(organization=organization, collection_method="manual")
    credit_grant(actor=None, organization=organization, amount=Decimal("50.00"), currency="EUR", kind="promotional")
    staff("finance")
    form = {"description": "Extra seats", "amount": "10.50"}
    body = client_a.post(CHARGE, form).content.decode()
    assert effect(body)[4:] == [
        ("Invoice total", "€12.50"),
        ("Paid from the credit balance", "€12.50"),
        ("Amount due", "€0.00"),
        ("Collection", "nothing to collect: paid from the credit balance"),
    ]
    assert client_a.post(CHARGE, {**form, "confirm": fingerprint(body)}).status_code == 302
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.credits_applied, invoice.amount_due) == ("paid", Decimal("12.5000"), 0)
    assert not OutboxMessage.objects.filter(kind="payments.collect").exists()
    # more than the balance left (37.50): the rest is sent, not charged (manual collection)
    form = {"description": "Consulting day", "amount": "800"}
    body = client_a.post(CHARGE, form).content.decode()
    assert effect(body)[4:] == [
        ("Invoice total", "€952.00"),
        ("Paid from the credit balance", "€37.50"),
        ("Amount due", "€914.50"),
        ("Collection", "sent: the customer pays from the portal or by transfer"),
    ]
    assert client_a.post(CHARGE, {**form, "confirm": fingerprint(body)}).status_code == 302
    second = Invoice.objects.exclude(pk=invoice.pk).get()
    assert (second.status, second.credits_applied, second.amount_due) == (
        "open",
        Decimal("37.5000"),
        Decimal("914.5000"),
    )
    assert not OutboxMessage.objects.filter(kind="payments.collect").exists()


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"description": "x", "amount": "abc"}, "Enter a number."),
        ({"description": "x", "amount": "-1"}, "Ensure this value is greater than or equal to 0."),
        ({"description": "x", "amount": "0"}, "amount must be positive, in EUR&#x27;s decimals."),
        ({"description": "x", "amount": "1.005"}, "amount must be positive, in EUR&#x27;s decimals."),
        ({"description": "   ", "amount": "5"}, "This field is required."),
    ],
)
def test_one_off_charge_refusals_write_nothing(world, client_a, staff, form, message):  # noqa: F811
    staff("finance")
    before = snapshot()
    response = client_a.post(CHARGE, {**form, "confirm": "0" * 64})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert snapshot() == before


def test_one_off_charge_is_for_billing_writers_only(world, client_a, staff):  # noqa: F811
    staff("support")
    before = snapshot()
    assert client_a.post(CHARGE, {"description": "x", "amount": "5"}).status_code == 403
    assert snapshot() == before


def test_partial_refunds_then_the_rest(world, connected, client_a, staff):  # noqa: F811
    payer_with(world[0], connected, card=CARD_OK)
    invoice = april_open(world)
    collect_all()
    payment = Payment.objects.get()
    user = staff("finance")
    form = {"payment": payment.pk, "amount": "10.00", "reason": "Outage on 3 April"}
    before = snapshot()
    body = client_a.post(REFUND, form).content.decode()
    assert effect(body) == [
        ("Payment", f"{invoice.number} attempt 1: €35.70"),
        ("Already refunded", "€0.00"),
        ("Refund", "in part: €10.00 asked"),
        ("Credit note", "net €8.40, tax €1.60"),
        ("Credit note total", "€10.00"),
        ("Paid back to the customer", "€10.00"),
        ("Left to refund after", "€25.70"),
    ]
    assert snapshot() == before
    assert client_a.post(REFUND, {**form, "confirm": fingerprint(body)}).status_code == 302
    refund = Refund.objects.get()
    note = refund.credit_note
    assert (refund.amount, refund.status, note.total, note.reason) == (
        Decimal("10.0000"),
        "succeeded",
        Decimal("10.0000"),
        "Outage on 3 April",
    )
    assert events(refund) == [("refund.created", user), ("refund.succeeded", user)]
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("10.0000")
    # more than is left: refused by the form, nothing written
    before = snapshot()
    response = client_a.post(REFUND, {**form, "amount": "25.71"})
    assert response.status_code == 400
    assert "At most the €25.70 left to refund." in response.content.decode()
    assert snapshot() == before
    # the rest, in full: a note of what is left of the line and its tax
    form = {"payment": payment.pk, "reason": "Cancelled"}
    body = client_a.post(REFUND, form).content.decode()
    assert effect(body)[1:] == [
        ("Already refunded", "€10.00"),
        ("Refund", "in full"),
        ("Credit note", "net €21.60, tax €4.10"),
        ("Credit note total", "€25.70"),
        ("Paid back to the customer", "€25.70"),
        ("Left to refund after", "€0.00"),
    ]
    assert client_a.post(REFUND, {**form, "confirm": fingerprint(body)}).status_code == 302
    payment.refresh_from_db()
    assert (payment.amount_refunded, Refund.objects.count(), CreditNote.objects.count()) == (Decimal("35.7000"), 2, 2)
