"""Collection in chunks: a task's claimed collection messages are collected together (one
transaction opening the payments, the gateway calls concurrently, one recording the answers),
with the same outcomes, crash recovery and retries as one by one."""

from __future__ import annotations

from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.db import transaction
from django.utils import timezone

from billing.models import Organization
from core.models import OutboxMessage
from core.services.outbox import outbox_process
from invoicing.models import Invoice, InvoiceStatus
from payments.models import Payment
from payments.services.collection import collections_enqueue, invoices_collect
from tests.payments.conftest import CARD_DECLINED, CARD_OK, IBAN_FAILS, payer_with

D = Decimal


def open_invoices(proxy, methods: list[dict]) -> list[Invoice]:
    """One organization per method (saved at the gateway as its default), each with an open invoice
    of 12.50 EUR, and their collection messages as finalization writes them."""
    now = timezone.now()
    invoices = []
    for n, method in enumerate(methods):
        org = Organization.objects.create(external_id=f"chunk{n}", name=f"Chunk {n}", currency="EUR", country="DE")
        payer_with(org, proxy, **method)
        invoices.append(
            Invoice.objects.create(
                organization=org,
                status=InvoiceStatus.OPEN,
                number=f"CH-{n:04d}",
                currency="EUR",
                subtotal=D("12.50"),
                tax_total=D("0"),
                total=D("12.50"),
                amount_due=D("12.50"),
                issued_at=now,
                due_at=now,
            )
        )
    with transaction.atomic():
        collections_enqueue(invoices)
    return invoices


def states(invoices: list[Invoice]) -> list[tuple]:
    return [
        (
            Invoice.objects.get(pk=i.pk).status,
            list(Payment.objects.filter(invoice=i).values_list("number", "status")),
            list(Payment.objects.get(invoice=i).attempts.values_list("step", "outcome")),
        )
        for i in invoices
    ]


def test_a_chunk_is_collected_together_with_each_outcome_its_own(connected):
    invoices = open_invoices(connected, [{"card": CARD_OK}, {"card": CARD_DECLINED}, {"iban": IBAN_FAILS}])
    ids = list(OutboxMessage.objects.filter(kind="payments.collect").order_by("pk").values_list("pk", flat=True))
    result = outbox_process(ids=ids)
    assert (result.done, result.failed, result.dead) == (3, 0, 0)
    done = [("create", "done"), ("confirm", "done")]
    assert states(invoices) == [
        ("paid", [(1, "succeeded")], done),
        ("open", [(1, "failed")], [("create", "done"), ("confirm", "declined")]),
        ("open", [(1, "processing")], done),
    ]
    assert connected.confirms() == 3 and connected.requests["POST /v1/payment_intents"] == 3
    created = LogEntry.objects.filter(changes__event=[None, "payment.created"])
    assert sorted(created.values_list("object_id", flat=True)) == sorted(Payment.objects.values_list("pk", flat=True))
    # the chunk again (redelivered): nothing more happens
    assert invoices_collect([i.pk for i in invoices])[invoices[0].pk] is None
    assert connected.confirms() == 3 and Payment.objects.count() == 3


def test_gateway_down_fails_each_message_and_the_retry_charges_each_once(connected):
    invoices = open_invoices(connected, [{"card": CARD_OK}, {"card": CARD_OK}])
    connected.down = True
    ids = list(OutboxMessage.objects.filter(kind="payments.collect").values_list("pk", flat=True))
    result = outbox_process(ids=ids)
    assert (result.done, result.failed) == (0, 2)
    assert sorted(OutboxMessage.objects.filter(pk__in=ids).values_list("status", "attempts")) == [
        ("failed", 1),
        ("failed", 1),
    ]
    assert states(invoices) == [("open", [(1, "pending")], [("create", "errored")])] * 2
    connected.down = False
    outcomes = invoices_collect([i.pk for i in invoices])
    assert [outcomes[i.pk].status for i in invoices] == ["succeeded", "succeeded"]
    assert (
        states(invoices)
        == [("paid", [(1, "succeeded")], [("create", "errored"), ("create", "done"), ("confirm", "done")])] * 2
    )
    assert connected.confirms() == 2 and connected.requests["POST /v1/payment_intents"] == 2


class Killed(BaseException):
    """Stands for SIGKILL at a fault point: nothing after it runs, no handler catches it."""


@pytest.mark.parametrize("point", ["payments.after_create", "payments.after_confirm"])
def test_a_chunk_killed_between_its_charges_and_their_record_is_charged_once_on_rerun(connected, monkeypatch, point):
    invoices = open_invoices(connected, [{"card": CARD_OK}, {"card": CARD_OK}, {"card": CARD_OK}])

    def fault(name):
        if name == point:
            raise Killed(name)

    monkeypatch.setattr("payments.services.collection.fault_point", fault)
    with pytest.raises(Killed):
        invoices_collect([i.pk for i in invoices])
    assert list(Payment.objects.values_list("status", flat=True)) == ["pending"] * 3
    assert connected.confirms() == (3 if point == "payments.after_confirm" else 0)
    monkeypatch.setattr("payments.services.collection.fault_point", lambda name: None)
    outcomes = invoices_collect([i.pk for i in invoices])
    assert [outcomes[i.pk].status for i in invoices] == ["succeeded"] * 3
    assert connected.confirms() == 3  # one charge each
    # one intent each: a second create with the same key is answered from its first
    assert connected.requests["POST /v1/payment_intents"] == 3
    assert [i.status for i in Invoice.objects.filter(pk__in=[i.pk for i in invoices])] == ["paid"] * 3
