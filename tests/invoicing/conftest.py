"""Shared by the invoicing tests: a seller in Germany (VAT registered), the Basic plan (30.00 EUR a
month, in advance, + 0.01 per API call) and Acme (DE) subscribed on 1 Apr 2027; usage events."""

from datetime import UTC, datetime

import msgspec
import pytest
import time_machine

from billing.models import PlanVersion
from billing.services.plan import ChargeInput, VersionInput, plan_create
from billing.services.subscription import subscription_create
from invoicing.models import InvoicingSettings
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from metering.services.meter import meter_create
from tests.factories import OrganizationFactory


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def calls(customer, *timestamps, prefix="e"):
    """Count-meter events for `customer`, stored and drained."""
    rows = [
        (f"{prefix}-{customer}-{i}-{ts.isoformat()}", customer, "api_call", ts, msgspec.Raw(b"{}"))
        for i, ts in enumerate(timestamps)
    ]
    landing_store(events=rows, received_at=datetime.now(UTC))
    assert drain_once(max_events=100_000).inserted == len(rows)


def subscribe(org, at=utc(2027, 4, 1)):
    with time_machine.travel(at, tick=False):
        return subscription_create(actor=None, organization=org, plan_version=PlanVersion.objects.get())


@pytest.fixture
def world(in_a):
    InvoicingSettings.objects.update_or_create(
        pk=1, defaults={"seller_country": "DE", "tax_registrations": ["DE"], "seller_name": "Seller GmbH"}
    )
    meter_create(actor=None, code="calls", name="API calls", event_type="api_call", aggregation="count")
    plan_create(
        actor=None,
        code="basic",
        name="Basic",
        currency="EUR",
        interval="month",
        version=VersionInput(
            base_fee="30.00", charges=[ChargeInput(meter="calls", price={"model": "per_unit", "unit_amount": "0.01"})]
        ),
    )
    org = OrganizationFactory(external_id="acme", currency="EUR", country="DE", name="Acme GmbH")
    return org, subscribe(org)
