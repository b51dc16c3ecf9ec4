"""Usage API benchmark (`make bench-usage`): p95 of the usage endpoints with 10M events stored,
while ingestion runs.

Seeding: 10M events for 10,000 customers over the current month are generated in SQL
(generate_series) straight into the partitioned event table, and the rollups are built by the
real rebuild (metering.services.rollups). The write path is measured by `make bench-ingest`;
this one measures reads. Then uvicorn (WEB_CONCURRENCY workers) and a drainer run, a load thread
ingests ~5,000 events/s, and 4 reader threads query random customers:

- GET /api/v1/usage for a count meter, a grouped sum meter, a unique-count meter (raw events);
- GET /api/v1/customers/<id>/usage (every meter).

Baseline in the same run: the same selector calls in process, without HTTP and Django.
The last line is JSON: events, per-endpoint p50/p95 ms, and the baseline p95s.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("INGEST_EVENTS_PER_SECOND_PER_KEY", "100000000")
os.environ.setdefault("INGEST_EVENTS_PER_SECOND_PER_TENANT", "100000000")

from ingest import drainer_procs, manage, percentile, start_web, stop  # noqa: E402

SLUG = "usagebench"
HOST = f"{SLUG}.localhost"
EVENTS = int(os.environ.get("BENCH_USAGE_EVENTS", "10000000"))
CUSTOMERS = 10_000
READS = int(os.environ.get("BENCH_USAGE_READS", "400"))


def log(message: str) -> None:
    print(message, flush=True)


def seed() -> tuple[str, datetime, datetime]:
    import django

    django.setup()
    from django.db import connection
    from django_tenants.utils import schema_context

    from accounts.services.api_key import apikey_create
    from billing.periods import calendar_period_containing
    from metering.models import Meter
    from metering.services.meter import meter_create
    from metering.services.partitions import partitions_maintain
    from metering.services.rollups import rollups_rebuild
    from tenants.models import Tenant
    from tenants.services.tenant_provision import tenant_create

    start, end = calendar_period_containing(instant=datetime.now(UTC), timezone="UTC", interval="month")
    tenant = Tenant.objects.filter(slug=SLUG).first() or tenant_create(name="Usage bench", slug=SLUG).tenant
    with schema_context(tenant.schema_name):
        key = apikey_create(name=f"bench-{int(time.time())}", scopes=["ingest", "read"], actor=None).secret
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM metering_event")
            have = cursor.fetchone()[0]
        if have >= EVENTS:
            log(f"reusing {have:,} seeded events")
            return key, start, end
        if not Meter.objects.exists():
            # Rollups are built by the rebuild below, so the backfill tasks these enqueue are not needed.
            meter_create(actor=None, code="requests", name="Requests", event_type="api_request", aggregation="count")
            meter_create(
                actor=None,
                code="bytes",
                name="Bytes",
                event_type="api_request",
                aggregation="sum",
                value_property="bytes",
                group_by=["region"],
            )
            meter_create(
                actor=None,
                code="users",
                name="Active users",
                event_type="api_request",
                aggregation="unique_count",
                value_property="user",
            )
        connection.tenant = tenant
        partitions_maintain()
        log(f"seeding {EVENTS:,} events for {CUSTOMERS:,} customers in SQL …")
        started = time.perf_counter()
        seconds = int((min(end, datetime.now(UTC)) - start).total_seconds())
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE metering_event, metering_rollup")
            cursor.execute(
                'INSERT INTO metering_event (event_id, customer, event_type, "timestamp", properties, received_at) '
                "SELECT 'seed-' || g, 'cust-' || lpad((g %% %s)::text, 5, '0'), 'api_request', "
                "%s::timestamptz + make_interval(secs => (g * 7919) %% %s), "
                "jsonb_build_object('bytes', (g * 31) %% 100000, 'region', (ARRAY['eu','us','ap'])[1 + g %% 3], "
                "'user', 'u' || ((g / %s) %% 50)), now() FROM generate_series(1::bigint, %s::bigint) AS g",
                [CUSTOMERS, start, max(seconds, 1), CUSTOMERS, EVENTS],
            )
            cursor.execute("ANALYZE metering_event")
        log(f"  inserted in {time.perf_counter() - started:.0f}s; building rollups …")
        started = time.perf_counter()
        rows = rollups_rebuild()
        log(f"  {rows:,} rollup rows in {time.perf_counter() - started:.0f}s")
        return key, start, end


def baseline(start: datetime, end: datetime) -> dict[str, float]:
    from django_tenants.utils import schema_context

    from metering.models import Meter
    from metering.selectors.usage import usage_for_customer, usage_get

    out = {}
    rng = random.Random(5)
    with schema_context(f"t_{SLUG}"):
        meters = {m.code: m for m in Meter.objects.all()}
        for code, group in (("requests", False), ("bytes", True), ("users", False)):
            times = []
            for _ in range(100):
                customer = f"cust-{rng.randrange(CUSTOMERS):05d}"
                t = time.perf_counter()
                usage_get(meter=meters[code], customer=customer, start=start, end=end, group_by=group)
                times.append(time.perf_counter() - t)
            out[f"selector_{code}_p95_ms"] = percentile(times, 0.95) * 1000
        times = []
        for _ in range(100):
            t = time.perf_counter()
            usage_for_customer(customer=f"cust-{rng.randrange(CUSTOMERS):05d}", start=start, end=end)
            times.append(time.perf_counter() - t)
        out["selector_all_meters_p95_ms"] = percentile(times, 0.95) * 1000
    return out


def main() -> None:
    env = dict(os.environ)
    log("migrating …")
    manage("platform_migrate", "-v", "0", env=env)
    key, start, end = seed()
    base_line = baseline(start, end)
    port = 19000 + random.randrange(500)
    base = f"http://127.0.0.1:{port}"
    web = start_web(port, env)
    drainers = drainer_procs(1, env)
    headers = {"Host": HOST, "Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    stop_flag = threading.Event()
    ingested = 0

    def ingest():
        nonlocal ingested
        session = requests.Session()
        n = 0
        while not stop_flag.is_set():
            events = [
                {
                    "id": f"live-{time.time_ns()}-{i}",
                    "customer": f"cust-{(n + i) % CUSTOMERS:05d}",
                    "type": "api_request",
                    "properties": {"bytes": i, "region": "eu", "user": f"u{i % 50}"},
                }
                for i in range(500)
            ]
            n += 500
            if (
                session.post(
                    f"{base}/api/v1/events", data=msgspec.json.encode({"events": events}), headers=headers, timeout=30
                ).status_code
                == 202
            ):
                ingested += 500
            time.sleep(0.1)

    endpoints = {
        "count": lambda c: ("/api/v1/usage", {"customer": c, "meter": "requests"}),
        "sum_grouped": lambda c: ("/api/v1/usage", {"customer": c, "meter": "bytes", "group_by": "true"}),
        "unique_count": lambda c: ("/api/v1/usage", {"customer": c, "meter": "users"}),
        "all_meters": lambda c: (f"/api/v1/customers/{c}/usage", {}),
    }
    timings: dict[str, list[float]] = {name: [] for name in endpoints}
    errors = 0

    def read(seed_value: int):
        nonlocal errors
        rng = random.Random(seed_value)
        session = requests.Session()
        for i in range(READS // 4):
            name = list(endpoints)[i % len(endpoints)]
            path, params = endpoints[name](f"cust-{rng.randrange(CUSTOMERS):05d}")
            t = time.perf_counter()
            response = session.get(f"{base}{path}", params=params, headers=headers, timeout=30)
            timings[name].append(time.perf_counter() - t)
            errors += response.status_code != 200

    loader = threading.Thread(target=ingest)
    loader.start()
    started = time.perf_counter()
    readers = [threading.Thread(target=read, args=(s,)) for s in range(4)]
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    elapsed = time.perf_counter() - started
    stop_flag.set()
    loader.join()
    stop(drainers)
    stop([web])

    results: dict[str, float] = {"events": float(EVENTS)}
    for name, values in timings.items():
        results[f"{name}_p50_ms"] = statistics.median(values) * 1000
        results[f"{name}_p95_ms"] = percentile(values, 0.95) * 1000
        log(
            f"{name:>13}: p50 {results[f'{name}_p50_ms']:.1f} ms, p95 {results[f'{name}_p95_ms']:.1f} ms "
            f"over {len(values)} requests"
        )
    log(f"while ingesting {ingested / elapsed:,.0f} events/s; {errors} errors")
    for name, value in base_line.items():
        log(f"baseline {name}: {value:.1f} ms")
    results.update(base_line)
    print(json.dumps({k: round(v, 2) for k, v in results.items()}))


if __name__ == "__main__":
    main()
