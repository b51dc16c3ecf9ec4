"""Invoicing writes its side effects to the outbox in the transaction of the change: the run's
drafts (`invoice.created`, one INSERT per chunk), finalization (`invoice.finalized`, `invoice.paid`
and one `invoice.deliver` per invoice), void, payment by hand and credit notes; a refused action
writes none."""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.errors import DomainError
from core.models import OutboxMessage
from core.services.webhook_endpoint import webhook_endpoint_create
from invoicing.models import Invoice
from invoicing.services.billing_run import billing_run
from invoicing.services.invoice import CreditNoteLineInput, credit_note_create, invoice_mark_paid, invoice_void
from tests.factories import OrganizationFactory, SubscriptionFactory
from tests.helpers import utc


def events(event_type=None) -> list[tuple[str, dict]]:
    rows = OutboxMessage.objects.filter(kind="webhook.deliver").order_by("id")
    found = [(m.payload["event"]["type"], m.payload["event"]["data"]) for m in rows]
    return [e for e in found if event_type is None or e[0] == event_type]


@pytest.fixture
def endpoints(world):
    return [webhook_endpoint_create(url=f"http://127.0.0.1:9/{n}").endpoint for n in range(2)]


@pytest.mark.django_db
def test_the_run_drafts_and_finalizes_with_bulk_outbox_writes(world, endpoints):
    org, _ = world
    for n in range(3):
        SubscriptionFactory(
            organization=OrganizationFactory(external_id=f"c{n}", currency="EUR", country="DE"), at=utc(2027, 4, 1)
        )
    with CaptureQueriesContext(connection) as queries:
        result = billing_run(at=utc(2027, 4, 1), chunk_size=500)
    assert result.invoices_created == 4
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT INTO core_outboxmessage" in q["sql"]]
    assert len(inserts) == 1  # 4 drafts x 2 endpoints in one statement
    created = events("invoice.created")
    assert len(created) == 8
    assert sorted({data["customer"] for _, data in created}) == ["acme", "c0", "c1", "c2"]
    acme = next(data for _, data in created if data["customer"] == "acme")
    draft = Invoice.objects.get(organization=org)
    assert acme == {
        "id": draft.pk,
        "number": None,
        "status": "draft",
        "customer": "acme",
        "subscription": draft.subscription_id,
        "currency": "EUR",
        "period_start": "2027-04-01T00:00:00+00:00",
        "period_end": "2027-05-01T00:00:00+00:00",
        "subtotal": "30.00",
        "tax_total": "5.70",
        "total": "35.70",
        "credits_applied": "0.00",
        "amount_due": "35.70",
        "amount_paid": "0.00",
        "issued_at": None,
        "due_at": None,
        "paid_at": None,
        "voided_at": None,
    }

    with CaptureQueriesContext(connection) as queries:
        result = billing_run(at=utc(2027, 4, 2), chunk_size=500)
    assert result.finalized == 4
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT INTO core_outboxmessage" in q["sql"]]
    assert len(inserts) == 2  # the deliveries, the finalized events (no invoice was paid at once)
    finalized = events("invoice.finalized")
    assert len(finalized) == 8 and all(data["status"] == "open" and data["number"] for _, data in finalized)
    deliveries = OutboxMessage.objects.filter(kind="invoice.deliver")
    assert sorted(deliveries.values_list("key", flat=True)) == sorted(
        f"invoice:{pk}" for pk in Invoice.objects.values_list("pk", flat=True)
    )
    assert events("invoice.paid") == []


@pytest.mark.django_db
def test_void_paid_and_credit_notes_emit_and_refusals_do_not(world, endpoints):
    org, _ = world
    billing_run(at=utc(2027, 4, 2))
    invoice = Invoice.objects.get(organization=org)
    OutboxMessage.objects.all().delete()

    with pytest.raises(DomainError), transaction.atomic():
        credit_note_create(actor=None, invoice=invoice, reason="", lines=[])
    assert OutboxMessage.objects.count() == 0

    line = invoice.lines.get(kind="base_fee")
    note = credit_note_create(
        actor=None, invoice=invoice, reason="goodwill", lines=[CreditNoteLineInput(line.pk, Decimal("10.00"))]
    )
    [(_, data), _] = events("credit_note.created")
    assert data["number"] == note.number and data["invoice"] == invoice.pk and data["total"] == "11.90"
    assert data["customer"] == "acme" and data["applied_to_invoice"] == "11.90"

    invoice_mark_paid(actor=None, invoice=invoice, reference="wire 42")
    [(_, paid), _] = events("invoice.paid")
    assert (paid["status"], paid["amount_due"], paid["amount_paid"]) == ("paid", "0.00", "23.80")

    with pytest.raises(DomainError):
        invoice_void(actor=None, invoice=invoice)  # paid: refused
    assert events("invoice.voided") == []


@pytest.mark.django_db
def test_void_emits(world, endpoints):
    org, _ = world
    billing_run(at=utc(2027, 4, 2))
    invoice = invoice_void(actor=None, invoice=Invoice.objects.get(organization=org))
    voided = events("invoice.voided")
    assert len(voided) == 2 and voided[0][1]["voided_at"] == invoice.voided_at.isoformat()
