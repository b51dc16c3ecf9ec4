"""When an invoice was written off: set by the service, and backfilled by the migration that added
the column (invoicing 0005) from the audit entries of earlier write-offs, else `updated_at`."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
import time_machine
from django.apps import apps

from core.errors import DomainError
from invoicing.models import Invoice
from invoicing.services.invoice import invoice_mark_paid, invoice_mark_uncollectible
from tests.factories import OrganizationFactory
from tests.helpers import utc

backfill = importlib.import_module("invoicing.migrations.0006_invoice_uncollectible_at").uncollectible_at_backfill


def open_invoice(org, number: str) -> Invoice:
    return Invoice.objects.create(
        organization=org,
        status="open",
        number=number,
        currency="USD",
        total=Decimal("80.00"),
        amount_due=Decimal("80.00"),
        issued_at=utc(2026, 2, 1),
        due_at=utc(2026, 3, 1),
    )


@pytest.mark.django_db
def test_mark_uncollectible_records_when_and_refuses_what_is_not_open(in_a):
    org = OrganizationFactory()
    invoice = open_invoice(org, "INV-1")
    invoice_mark_uncollectible(actor=None, invoice=invoice, at=utc(2026, 6, 8))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.uncollectible_at) == ("uncollectible", utc(2026, 6, 8))
    with time_machine.travel(utc(2026, 6, 9, 12), tick=False):
        other = invoice_mark_uncollectible(actor=None, invoice=open_invoice(org, "INV-2"))
    assert other.uncollectible_at == utc(2026, 6, 9, 12)  # no `at`: now
    with pytest.raises(DomainError) as refused:
        invoice_mark_uncollectible(actor=None, invoice=invoice, at=utc(2026, 7, 1))
    assert refused.value.code == "invoice_not_open"
    invoice.refresh_from_db()
    assert invoice.uncollectible_at == utc(2026, 6, 8)  # the first write-off's time, untouched


@pytest.mark.django_db
def test_migration_backfills_from_audit_entries_then_updated_at(in_a):
    org = OrganizationFactory()
    audited, paid_later, unaudited, still_open = (open_invoice(org, f"INV-{n}") for n in range(1, 5))
    with time_machine.travel(utc(2026, 6, 8, 9), tick=False):
        invoice_mark_uncollectible(actor=None, invoice=audited)
    with time_machine.travel(utc(2026, 6, 10, 9), tick=False):
        invoice_mark_uncollectible(actor=None, invoice=paid_later)
    invoice_mark_paid(actor=None, invoice=paid_later, at=utc(2026, 6, 20))
    # written off before any audit entry recorded it: only the row's last change tells
    Invoice.objects.filter(pk=unaudited.pk).update(status="uncollectible", updated_at=utc(2026, 6, 11))
    Invoice.objects.update(uncollectible_at=None)  # as before the column existed

    backfill(apps, None)

    assert dict(Invoice.objects.values_list("number", "uncollectible_at")) == {
        "INV-1": utc(2026, 6, 8, 9),
        "INV-2": utc(2026, 6, 10, 9),  # paid since: found through its audit entry
        "INV-3": utc(2026, 6, 11),
        "INV-4": None,
    }
    assert still_open.status == "open"
