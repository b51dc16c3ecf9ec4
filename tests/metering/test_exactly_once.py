"""Exactly-once ingestion under duplicates, concurrency, drainer restarts and kill -9, with real
processes (uvicorn, drainers) on real PostgreSQL and Redis. The oracle is computed from the
unique events the test generated."""

from __future__ import annotations

import random
import signal
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
import requests
from django.db import connection
from django_tenants.utils import schema_context

from metering.models import Event, LandingBatch, Rollup
from metering.services.landing import landing_store
from metering.services.meter import meter_create
from metering.services.rollups import rollups_check
from tests.live import drain_all, drainer, web_server

pytestmark = [pytest.mark.usefixtures("django_db_setup"), pytest.mark.slow]


@pytest.fixture
def tenant_with_meters(committed_tenant, django_db_blocker):
    tenant, key = committed_tenant
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        meter_create(
            actor=None, code="bytes", name="Bytes", event_type="upload", aggregation="sum", value_property="bytes"
        )
        meter_create(actor=None, code="uploads", name="Uploads", event_type="upload", aggregation="count")
    connection.set_schema_to_public()
    return tenant, key


def make_events(seed: int, unique: int):
    """`unique` events, 30 % of them resent 1-5 times with another timestamp and payload noise
    (but the same value: the oracle must not depend on which copy wins)."""
    rng = random.Random(seed)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    originals = []
    for i in range(unique):
        originals.append(
            {
                "id": f"ev-{seed}-{i}",
                "customer": f"cust-{rng.randrange(20)}",
                "type": "upload",
                "timestamp": (base + timedelta(seconds=rng.randrange(3 * 3600))).isoformat(),
                "properties": {"bytes": rng.randrange(1, 10_000), "region": rng.choice(["eu", "us"])},
            }
        )
    sends = list(originals)
    for event in rng.sample(originals, k=int(unique * 0.3)):
        for _ in range(rng.randint(1, 5)):
            repeat = dict(event, timestamp=(base + timedelta(seconds=rng.randrange(3 * 3600))).isoformat())
            repeat["properties"] = dict(event["properties"], nonce=rng.random())
            sends.append(repeat)
    rng.shuffle(sends)
    oracle_count: dict[str, int] = defaultdict(int)
    oracle_bytes: dict[str, int] = defaultdict(int)
    for event in originals:
        oracle_count[event["customer"]] += 1
        oracle_bytes[event["customer"]] += event["properties"]["bytes"]
    return sends, dict(oracle_count), dict(oracle_bytes)


def totals(schema: str):
    with schema_context(schema):
        count, total = defaultdict(int), defaultdict(Decimal)
        for r in Rollup.objects.select_related("meter"):
            if r.meter.code == "uploads":
                count[r.customer] += r.event_count
            else:
                total[r.customer] += r.value_sum
        return (
            dict(count),
            {k: int(v) for k, v in total.items()},
            Event.objects.count(),
            LandingBatch.objects.count(),
            rollups_check(),
        )


def post_batches(base, host, key, batches, *, workers: int) -> list[int]:
    def send(batch):
        session = requests.Session()
        for attempt in range(20):
            response = session.post(
                f"{base}/api/v1/events",
                data=msgspec.json.encode({"events": batch}),
                headers={"Host": host, "Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                timeout=30,
            )
            if response.status_code != 503:
                break
            time.sleep(0.2 * (attempt + 1))
        return response.status_code

    if workers == 1:
        return [send(b) for b in batches]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(send, batches))


def test_duplicate_replay_sequential_and_16_way_concurrent_across_drainer_restarts(tenant_with_meters):
    tenant, key = tenant_with_meters
    host = tenant.get_primary_domain().domain
    sends, oracle_count, oracle_bytes = make_events(seed=7, unique=10_000)
    batches = [sends[i : i + 400] for i in range(0, len(sends), 400)]
    half = len(batches) // 2
    with web_server() as base:
        # Sequential half, with a drainer restarted (SIGTERM) every few batches.
        running = drainer()
        for index, batch in enumerate(batches[:half]):
            assert post_batches(base, host, key, [batch], workers=1) == [202]
            if index % 7 == 6:
                running.send_signal(signal.SIGTERM)
                assert running.wait(timeout=30) == 0
                running = drainer()
        # 16-way concurrent: the other half plus every batch again, two drainers draining.
        second = drainer()
        statuses = post_batches(base, host, key, batches[half:] + batches, workers=16)
        assert set(statuses) == {202}
        for proc in (running, second):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
    drain_all()
    count, total, stored, landing, mismatches = totals(tenant.schema_name)
    assert stored == 10_000
    assert landing == 0
    assert count == oracle_count
    assert total == oracle_bytes
    assert mismatches == []


@pytest.mark.parametrize(
    ("point", "nth"),
    [
        ("drain.after_ledger", 1),
        ("drain.after_copy", 2),
        ("drain.after_rollups", 3),
        ("drain.before_commit", 1),
        ("drain.after_commit", 2),
    ],
)
def test_kill_9_of_the_drainer_loses_and_doubles_nothing(tenant_with_meters, django_db_blocker, point, nth):
    tenant, _ = tenant_with_meters
    sends, oracle_count, oracle_bytes = make_events(seed=hash(point) % 1000 + nth, unique=3_000)
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        for i in range(0, len(sends), 300):
            chunk = sends[i : i + 300]
            events = [
                (
                    e["id"],
                    e["customer"],
                    e["type"],
                    datetime.fromisoformat(e["timestamp"]),
                    msgspec.Raw(msgspec.json.encode(e["properties"])),
                )
                for e in chunk
            ]
            landing_store(events=events, received_at=datetime.now(UTC))
    proc = drainer("--once", "--batch-events", "700", BILLING_FAULT=f"{point}:{nth}")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    with django_db_blocker.unblock():
        assert totals(tenant.schema_name)[3] > 0  # work was left behind by the crash
        drain_all()
        count, total, stored, landing, mismatches = totals(tenant.schema_name)
    assert (stored, landing, mismatches) == (3_000, 0, [])
    assert count == oracle_count
    assert total == oracle_bytes


def test_redis_down_ingestion_and_draining_continue(tenant_with_meters, django_db_blocker):
    tenant, key = tenant_with_meters
    host = tenant.get_primary_domain().domain
    dead = "redis://127.0.0.1:1/0"
    sends, oracle_count, _ = make_events(seed=3, unique=500)
    with web_server(REDIS_URL=dead) as base:
        assert post_batches(base, host, key, [sends[:300], sends[300:]], workers=1) == [202, 202]
    with django_db_blocker.unblock():
        drain_all(REDIS_URL=dead)
        count, _, stored, landing, mismatches = totals(tenant.schema_name)
    assert (stored, landing, mismatches) == (500, 0, [])
    assert count == oracle_count
