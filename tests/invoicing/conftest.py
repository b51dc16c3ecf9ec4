"""Shared by the invoicing tests: a seller in Germany (VAT registered), the Basic plan (30.00 EUR a
month, in advance, + 0.01 per API call) and Acme (DE) subscribed on 1 Apr 2027; usage events."""

from datetime import UTC, datetime

import msgspec
import pytest
from django.core.files.storage import FileSystemStorage

from invoicing.models import Invoice, InvoicingSettings
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from tests.factories import MeterFactory, OrganizationFactory, PlanFactory, SubscriptionFactory
from tests.helpers import utc


def calls(customer, *timestamps, prefix="e"):
    """Count-meter events for `customer`, stored and drained."""
    rows = [
        (f"{prefix}-{customer}-{i}-{ts.isoformat()}", customer, "api_call", ts, msgspec.Raw(b"{}"))
        for i, ts in enumerate(timestamps)
    ]
    landing_store(events=rows, received_at=datetime.now(UTC))
    assert drain_once(max_events=100_000).inserted == len(rows)


@pytest.fixture
def world(in_a):
    InvoicingSettings.objects.update_or_create(
        pk=1, defaults={"seller_country": "DE", "tax_registrations": ["DE"], "seller_name": "Seller GmbH"}
    )
    MeterFactory()
    PlanFactory(code="basic", name="Basic", currency="EUR", base_fee="30.00", per_call=True)
    org = OrganizationFactory(external_id="acme", currency="EUR", country="DE", name="Acme GmbH")
    return org, SubscriptionFactory(organization=org, at=utc(2027, 4, 1))


@pytest.fixture
def storage(tmp_path, monkeypatch):
    """Invoice PDFs in a directory of this test's own (the default storage is the shared
    MEDIA_ROOT)."""
    fs = FileSystemStorage(location=tmp_path / "media")
    monkeypatch.setattr(Invoice._meta.get_field("pdf"), "storage", fs)
    return fs
