"""Finalization hands the invoices to a real Celery worker, in the tenant of the run: each PDF is
rendered and stored once and the invoice emailed once, in batches."""

import time
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django_tenants.utils import schema_context

from billing.models import Organization, PlanVersion
from billing.services.plan import VersionInput, plan_create
from billing.services.subscription import subscription_create
from invoicing.models import Invoice, InvoicingSettings
from invoicing.services.billing_run import billing_run
from tests.live import celery_worker

pytestmark = [pytest.mark.usefixtures("django_db_setup"), pytest.mark.slow]


def test_finalized_invoices_are_rendered_and_emailed_by_the_worker(committed_tenant, django_db_blocker):
    tenant, _ = committed_tenant
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            InvoicingSettings.objects.update_or_create(pk=1, defaults={"seller_name": "Seller", "grace_hours": 0})
            plan_create(
                actor=None,
                code="basic",
                name="Basic",
                currency="EUR",
                interval="month",
                version=VersionInput(base_fee="9.00"),
            )
            for n in range(3):
                org = Organization.objects.create(
                    external_id=f"c{n}",
                    name=f"Customer {n}",
                    currency="EUR",
                    billing_email=f"c{n}@example.com" if n else "",
                )
                # made before it starts (pending), whatever today is: nothing asks for a billing run
                with time_machine.travel(datetime(2026, 12, 1, tzinfo=UTC), tick=False):
                    subscription_create(
                        actor=None,
                        organization=org,
                        plan_version=PlanVersion.objects.get(),
                        start_at=datetime(2027, 1, 1, tzinfo=UTC),
                    )
        with celery_worker():
            with schema_context(tenant.schema_name):
                result = billing_run(at=datetime(2027, 1, 1, tzinfo=UTC))
            assert (result.invoices_created, result.finalized) == (3, 3)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with schema_context(tenant.schema_name):
                    done = list(
                        Invoice.objects.order_by("number").values_list("number", "pdf", "pdf_sha256", "emailed_at")
                    )
                if all(pdf for _, pdf, _, _ in done) and all(emailed for _, _, _, emailed in done[1:]):
                    break
                time.sleep(0.3)
        connection.set_schema_to_public()
    numbers = [number for number, *_ in done]
    assert numbers == ["INV-000001", "INV-000002", "INV-000003"]
    assert [pdf for _, pdf, _, _ in done] == [f"invoices/{tenant.schema_name}/{n}.pdf" for n in numbers]
    assert all(len(sha) == 64 for _, _, sha, _ in done)
    # c0 has no billing email: its invoice is stored but never emailed
    assert [emailed is not None for _, _, _, emailed in done] == [False, True, True]
