"""Creating a meter after events arrived backfills it, in a real Celery worker process: the
tenant travels in the task headers and the worker rebuilds the rollups inside that schema."""

import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from django.db import connection
from django_tenants.utils import schema_context

from metering.models import Rollup
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from metering.services.meter import meter_create
from tests.live import celery_worker

pytestmark = [pytest.mark.usefixtures("django_db_setup"), pytest.mark.slow]


def test_meter_backfill_runs_in_the_worker(committed_tenant, django_db_blocker):
    tenant, _ = committed_tenant
    ts = datetime.now(UTC).replace(minute=5, second=0, microsecond=0) - timedelta(hours=2)
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            landing_store(
                events=[
                    (f"b{i}", "acme", "upload", ts + timedelta(minutes=i), msgspec.Raw(b'{"bytes": 5}'))
                    for i in range(4)
                ],
                received_at=datetime.now(UTC),
            )
            drain_once(max_events=100)
            assert Rollup.objects.count() == 0
        with celery_worker():
            with schema_context(tenant.schema_name):
                meter = meter_create(
                    actor=None,
                    code="uploads",
                    name="Uploads",
                    event_type="upload",
                    aggregation="sum",
                    value_property="bytes",
                )
            deadline = time.monotonic() + 30
            rollups = []
            while time.monotonic() < deadline:
                with schema_context(tenant.schema_name):
                    rollups = [
                        (r.customer, r.event_count, int(r.value_sum)) for r in Rollup.objects.filter(meter=meter)
                    ]
                if rollups:
                    break
                time.sleep(0.2)
        connection.set_schema_to_public()
    assert rollups == [("acme", 4, 20)]
