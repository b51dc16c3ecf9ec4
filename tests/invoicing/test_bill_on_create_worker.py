"""A new subscription's in-advance fee is drafted right after it is created, by a real Celery
worker running the billing run it asked for on commit (issue 9: creation did not ask; only plan
changes did), not at the next hourly run."""

import time

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from billing.models import Organization, PlanVersion
from billing.services.plan import VersionInput, plan_create
from billing.services.subscription import subscription_create
from invoicing.models import Invoice
from tests.live import celery_worker

pytestmark = [pytest.mark.usefixtures("django_db_setup"), pytest.mark.slow]


def test_the_first_fee_is_drafted_right_after_creation(committed_tenant, django_db_blocker):
    tenant, _ = committed_tenant
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            plan_create(
                actor=None, code="basic", name="Basic", currency="EUR", interval="month", version=VersionInput("9.00")
            )
            org = Organization.objects.create(external_id="c1", name="Customer 1", currency="EUR")
        with celery_worker():
            with schema_context(tenant.schema_name):
                # anniversary billing: the first period is a whole month from now, billed in full
                sub = subscription_create(
                    actor=None, organization=org, plan_version=PlanVersion.objects.get(), billing_mode="anniversary"
                )
            deadline = time.monotonic() + 60
            lines = []
            while time.monotonic() < deadline and not lines:
                time.sleep(0.2)
                with schema_context(tenant.schema_name):
                    lines = list(
                        Invoice.objects.filter(subscription=sub).values_list(
                            "status", "bill_point", "lines__kind", "lines__description", "lines__amount"
                        )
                    )
        connection.set_schema_to_public()
    assert lines == [("draft", sub.started_at, "base_fee", "Basic base fee", 9)]
