"""Previews of a bill that cannot be priced answer 422 `pricing_error` naming the charge, its meter
and the window, and write nothing (issue 9, item 6c); and a percentage charge reads the events'
sum and their values in one snapshot, so a drain committing meanwhile cannot make them disagree.

Acme is on Basic (10.00 EUR a month + 0.01 per byte uploaded, a sum meter) since April 1st 2027,
April's fee invoiced; its April rollup says -5 bytes (written directly: bad data)."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
import time_machine
from auditlog.models import LogEntry
from django.db import connection
from django_tenants.utils import schema_context

from billing.models import Organization, PlanVersion, Subscription, SubscriptionPhase
from billing.selectors import bill as bill_selectors
from billing.services.plan import ChargeInput
from billing.services.subscription import subscription_cancel, subscription_create
from core.money import Money
from invoicing.models import Invoice, InvoicingSettings
from invoicing.services.billing_run import billing_run
from metering.models import Meter, Rollup
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from tests.factories import APIKeyFactory, MeterFactory, OrganizationFactory, PlanFactory, SubscriptionFactory
from tests.helpers import bearer

D = Decimal
APRIL = datetime(2027, 4, 1, tzinfo=UTC)
NOW = datetime(2027, 4, 20, tzinfo=UTC)
MESSAGE = (
    "Charge 'Bytes' (meter 'bytes') cannot be priced for the usage from 2027-04-01T00:00:00+00:00 to "
    "{end}: quantity must not be negative (got -5). [negative_quantity]"
)


def plans_and_meter(*, percentage: bool = False) -> None:
    MeterFactory(code="bytes", name="Bytes", event_type="upload", aggregation="sum", value_property="bytes")
    price = (
        {"model": "percentage", "rate": "10", "fixed_amount": "0.30"}
        if percentage
        else {"model": "per_unit", "unit_amount": "0.01"}
    )
    for code, fee in (("basic", "10.00"), ("pro", "20.00")):
        PlanFactory(code=code, currency="EUR", base_fee=fee, charges=[ChargeInput(meter="bytes", price=price)])


@pytest.fixture
def poisoned(in_a):
    InvoicingSettings.objects.update_or_create(pk=1, defaults={"seller_name": "Seller GmbH"})
    plans_and_meter()
    org = OrganizationFactory(external_id="acme", name="Acme", currency="EUR", timezone="UTC")
    sub = SubscriptionFactory(organization=org, plan="basic", at=APRIL)
    billing_run(at=APRIL)
    Rollup.objects.create(
        meter=Meter.objects.get(),
        customer="acme",
        hour=datetime(2027, 4, 10, tzinfo=UTC),
        event_count=1,
        value_sum=D(-5),
        value_min=D(-5),
        value_max=D(-5),
    )
    return sub, APIKeyFactory(name="crm", scopes=["read", "write"]).secret


def written(sub) -> tuple:
    sub.refresh_from_db()
    return (
        sub.status,
        sub.ended_at,
        sub.plan_version_id,
        list(SubscriptionPhase.objects.values_list("plan_version_id", "starts_at", "ends_at")),
        Invoice.objects.count(),
        LogEntry.objects.count(),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body", "end"),
    [
        ("post", "cancel/preview", {"at_period_end": False}, "2027-04-20T00:00:00+00:00"),
        ("post", "cancel", {"at_period_end": False}, "2027-04-20T00:00:00+00:00"),
        ("post", "change-plan/preview", {"plan": "pro"}, "2027-04-20T00:00:00+00:00"),
        ("post", "change-plan", {"plan": "pro"}, "2027-04-20T00:00:00+00:00"),
        ("post", "cancel/preview", {}, "2027-05-01T00:00:00+00:00"),
        ("get", "/api/v1/invoices/preview?customer=acme", None, "2027-05-01T00:00:00+00:00"),
    ],
)
def test_a_bill_that_cannot_be_priced_is_a_422_naming_the_charge(client_a, poisoned, method, path, body, end):
    sub, key = poisoned
    before = written(sub)
    url = path if path.startswith("/") else f"/api/v1/subscriptions/{sub.pk}/{path}"
    with time_machine.travel(NOW, tick=False):
        if method == "get":
            response = client_a.get(url, **bearer(key))
        else:
            response = client_a.post(url, body, content_type="application/json", **bearer(key))
    assert response.status_code == 422, response.content
    assert response.json() == {"error": {"code": "pricing_error", "message": MESSAGE.format(end=end)}}
    assert written(sub) == before


def _commit_an_event_elsewhere(schema: str, at: datetime) -> None:
    """In another thread (another database connection, autocommit): land and drain one event."""

    def run():
        try:
            with schema_context(schema):
                row = ("late-1", "acme", "upload", at, msgspec.Raw(b'{"bytes": "7.00"}'))
                landing_store(events=[row], received_at=at)
                assert drain_once(max_events=100).inserted == 1
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)


@pytest.mark.usefixtures("django_db_setup")
def test_a_percentage_charge_reads_sum_and_values_in_one_snapshot(committed_tenant, django_db_blocker, monkeypatch):
    """An event is committed by another connection right when the bill starts reading the events'
    values. Read in two statements (the sum, then the values), the two disagreed and the bill
    failed with `event_values_mismatch`; read in one, the new event is simply in both."""
    tenant, _ = committed_tenant
    read_values = bill_selectors.event_values_bulk
    committed = []

    def values_after_a_commit(**kwargs):
        if not committed:
            committed.append(True)
            _commit_an_event_elsewhere(tenant.schema_name, datetime(2027, 4, 12, 8, 30, tzinfo=UTC))
        return read_values(**kwargs)

    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            plans_and_meter(percentage=True)
            org = Organization.objects.create(external_id="acme", name="Acme", currency="EUR")
            with time_machine.travel(APRIL - timedelta(days=1), tick=False):  # pending: no billing run is asked for
                sub = subscription_create(
                    actor=None,
                    organization=org,
                    plan_version=PlanVersion.objects.get(plan__code="basic"),
                    start_at=APRIL,
                )
            rows = [
                (f"p{i}", "acme", "upload", APRIL + timedelta(days=3, hours=i), msgspec.Raw(b'{"bytes": "10.00"}'))
                for i in range(3)
            ]
            landing_store(events=rows, received_at=APRIL)
            assert drain_once(max_events=100).inserted == 3
            sub = Subscription.objects.get(pk=sub.pk)
            monkeypatch.setattr(bill_selectors, "event_values_bulk", values_after_a_commit)
            with time_machine.travel(NOW, tick=False):
                change = subscription_cancel(actor=None, subscription=sub, at_period_end=False, preview=True)
        connection.set_schema_to_public()
    assert committed == [True]
    [usage] = [line for line in change.bill.lines if line.kind == "usage"]
    # 10 % of 10 + 10 + 10 + 7 and 0.30 for each of the 4 payments
    assert (usage.quantity, usage.amount) == (D("37.00"), Money(D("4.90"), "EUR"))


@pytest.mark.django_db
def test_usage_an_invoice_line_cannot_store_is_a_pricing_error(client_a, poisoned):
    _, key = poisoned
    Rollup.objects.update(value_sum=D("1e17"), value_min=D("1e17"), value_max=D("1e17"))
    why = "the amount 1000000000000000.00 is past what a line can hold (1,000,000,000,000,000)"
    with time_machine.travel(NOW, tick=False):
        response = client_a.get("/api/v1/invoices/preview?customer=acme", **bearer(key))
    assert response.status_code == 422, response.content
    assert response.json()["error"]["message"].endswith(f"2027-05-01T00:00:00+00:00: ValueError: {why}")
