"""Kill -9 of the billing run at seeded points, then a second run: exactly the invoices of an
uninterrupted run (the same lines, one per subscription and bill point) and gap-free numbers.
The run is the real `manage.py billing_run` in its own process, on committed data."""

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import time_machine
from django.db import connection
from django_tenants.utils import schema_context

from billing.models import Organization, PlanVersion, Subscription
from billing.services.plan import ChargeInput, VersionInput, plan_create
from billing.services.subscription import subscription_create
from invoicing.models import Invoice, InvoicingSettings
from invoicing.services.billing_run import billing_run
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from tests.factories import MeterFactory
from tests.helpers import utc
from tests.live import ROOT, process_env

pytestmark = [pytest.mark.usefixtures("django_db_setup"), pytest.mark.slow]

SUBSCRIPTIONS = 20
AT = datetime(2027, 3, 15, tzinfo=UTC)


def seed(schema: str) -> None:
    with schema_context(schema):
        InvoicingSettings.objects.update_or_create(pk=1, defaults={"seller_country": "DE", "tax_registrations": ["DE"]})
        MeterFactory()
        graduated = {
            "model": "graduated",
            "tiers": [{"up_to": "10", "unit_amount": "0"}, {"up_to": None, "unit_amount": "0.5"}],
        }
        plan_create(
            actor=None,
            code="basic",
            name="Basic",
            currency="EUR",
            interval="month",
            version=VersionInput(base_fee="30.00", charges=[ChargeInput(meter="calls", price=graduated)]),
        )
        version = PlanVersion.objects.get()
        events = []
        for n in range(SUBSCRIPTIONS):
            org = Organization.objects.create(
                external_id=f"c{n:02d}", name=f"Customer {n}", currency="EUR", country="DE"
            )
            # made before they start (pending), whatever today is: nothing asks for a billing run
            with time_machine.travel(utc(2026, 12, 1), tick=False):
                subscription_create(
                    actor=None, organization=org, plan_version=version, start_at=utc(2027, 1, 1 + n % 3)
                )
            for i in range(n * 3):
                ts = utc(2027, 1, 5) + timedelta(hours=7 * i + n)
                events.append((f"c{n}-{i}", org.external_id, "api_call", ts, msgspec.Raw(b"{}")))
        landing_store(events=events, received_at=datetime.now(UTC))
        drain_once(max_events=100_000)


def invoices(schema: str) -> dict:
    with schema_context(schema):
        out = {}
        for invoice in Invoice.objects.prefetch_related("lines"):
            lines = [
                (line.kind, line.description, line.amount, line.tax_amount)
                for line in invoice.lines.order_by("position")
            ]
            out[(invoice.subscription.organization.external_id, invoice.bill_point)] = (
                invoice.status,
                invoice.total,
                lines,
            )
        return out


def run(slug: str, **env: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "manage.py",
        "billing_run",
        "--tenant",
        slug,
        "--at",
        AT.isoformat(),
        "--chunk-size",
        "7",
    ]
    return subprocess.run(command, cwd=ROOT, env=process_env(**env), capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize(
    ("point", "nth"),
    [
        ("billing.after_compose", 2),
        ("billing.after_invoices", 1),
        ("billing.after_lines", 3),
        ("billing.before_commit", 2),
        ("billing.after_chunk", 1),
        ("finalize.after_numbers", 1),
        ("finalize.after_round", 2),
    ],
)
def test_killed_run_then_rerun_makes_exactly_the_invoices_of_one_run(committed_tenant, django_db_blocker, point, nth):
    tenant, _ = committed_tenant
    with django_db_blocker.unblock():
        seed(tenant.schema_name)
        with schema_context(tenant.schema_name):
            expected = {
                (Subscription.objects.get(pk=d.subscription_id).organization.external_id, d.point): [
                    (x.line.kind, x.line.description, x.line.amount.amount, x.tax_amount.amount) for x in d.lines
                ]
                for d in billing_run(at=AT, dry_run=True).drafts
            }
            assert Invoice.objects.count() == 0
        connection.set_schema_to_public()
        killed = run(tenant.slug, BILLING_FAULT=f"{point}:{nth}")
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        partial = invoices(tenant.schema_name)
        assert all(lines for _, _, lines in partial.values())  # never an invoice without its lines
        again = run(tenant.slug)
        assert again.returncode == 0, again.stderr[-3000:]
        stored = invoices(tenant.schema_name)
        with schema_context(tenant.schema_name):
            numbers = sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))
        connection.set_schema_to_public()
    assert len(expected) == SUBSCRIPTIONS * 3  # Jan, Feb and Mar bill points, all past their grace
    assert {key: lines for key, (_, _, lines) in stored.items()} == expected
    assert {status for status, _, _ in stored.values()} == {"open"}
    assert numbers == [f"INV-{n:06d}" for n in range(1, len(expected) + 1)]
