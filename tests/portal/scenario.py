"""A customer with a month of usage, for the portal's page and browser tests: Acme (EUR,
Europe/Berlin) on Basic (10.00 EUR a month in advance + 0.01 per API call), subscribed from
April 1st 2027 local time, whose April in-advance fee is invoiced and finalized; on each local
day d of April 1-14 it made ((d - 1) % 3 + 1) * 5 calls, alternately in region eu and us, and 5
more on the 15th before noon UTC. Usage goes through ingestion's landing and the drainer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
import time_machine

from invoicing.models import Invoice, InvoicingSettings
from invoicing.services.billing_run import billing_run
from invoicing.services.finalize import invoice_finalize
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from tests.factories import (
    MembershipFactory,
    MeterFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
)

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2027, 4, 1, tzinfo=BERLIN).astimezone(UTC)  # 2027-03-31 22:00 UTC
NOW = datetime(2027, 4, 15, 12, 0, tzinfo=UTC)  # 14:00 in Berlin
PERIOD_END = datetime(2027, 5, 1, tzinfo=BERLIN).astimezone(UTC)


def daily_calls(day: int) -> int:
    return ((day - 1) % 3 + 1) * 5


CALLS_SO_FAR = sum(daily_calls(d) for d in range(1, 15)) + 5  # 140


def store_events(customer: str, events: list[tuple[str, datetime, dict]]) -> None:
    """Land and drain events (id, timestamp, properties) as the ingestion API would."""
    rows = [(eid, customer, "call", ts, msgspec.Raw(msgspec.json.encode(props))) for eid, ts, props in events]
    landing_store(events=rows, received_at=datetime.now(UTC))
    drain_once(max_events=10_000)


def seed(
    *, email: str = "owner@acme.example", password: str | None = None, start: datetime = START, now: datetime = NOW
) -> dict:
    """Create everything in the current tenant schema; returns the objects tests look at. `start`
    (a local midnight in Berlin) and `now` move the story (the browser tests use this month)."""
    InvoicingSettings.objects.update_or_create(pk=1, defaults={"seller_name": "Seller GmbH"})
    MeterFactory(event_type="call", group_by=["region"])
    PlanFactory(code="basic", name="Basic", currency="EUR", base_fee="10.00", per_call=True)
    org = OrganizationFactory(
        external_id="acme", name="Acme GmbH", currency="EUR", timezone="Europe/Berlin", country="DE"
    )
    user = UserFactory(email=email, **({"password": password} if password else {}))
    MembershipFactory(user=user, organization=org, role="owner")
    subscription = SubscriptionFactory(organization=org, at=start)
    with time_machine.travel(start + timedelta(minutes=5), tick=False):
        billing_run(at=start)
        invoice = Invoice.objects.get(organization=org)
        invoice = invoice_finalize(invoice=invoice)
    events = []
    local_start = start.astimezone(BERLIN)
    today = now.astimezone(BERLIN).date()
    day = 1
    while (date := (local_start + timedelta(days=day - 1)).date()) < today:
        noon = datetime(date.year, date.month, date.day, 12, tzinfo=BERLIN)
        for i in range(daily_calls(day)):
            region = "eu" if i % 2 == 0 else "us"
            events.append((f"d{day}-{i}", noon + timedelta(minutes=i), {"region": region}))
        day += 1
    for i in range(5):
        events.append((f"today-{i}", now - timedelta(hours=4, minutes=i), {"region": "eu"}))
    store_events(org.external_id, events)
    return {"organization": org, "user": user, "subscription": subscription, "invoice": invoice}


EXPECTED_SPEND = Decimal("10.00") + CALLS_SO_FAR * Decimal("0.01")  # 11.40
