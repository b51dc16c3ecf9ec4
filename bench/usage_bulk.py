"""Bulk usage benchmark: usage_bulk / event_values_bulk for 10,000 monthly windows, as the billing
run asks for them, against individual usage_get calls measured in the same run.

    TEST_DATA_DIR=.data/bench-usage-bulk DJANGO_ENV=development \\
        .venv/bin/python -m config.embedded exec -- .venv/bin/python bench/usage_bulk.py

Seeding (once; reused while the event count matches): BENCH_BULK_EVENTS events (default 3M) for
10,000 customers over the last closed calendar month, generated in SQL (generate_series) straight
into the partitioned event table, and the rollups built by the real rebuild
(metering.services.rollups). Meters: `requests` (count), `bytes` (sum, group_by region), `users`
(unique_count), `seats` (weighted_sum).

Measured (each best of BENCH_BULK_REPEAT runs, default 3, in process, no HTTP):

- usage_bulk over 10,000 calendar-month windows (one per customer): the sum meter with and
  without groups, the count meter, the unique_count meter, the weighted_sum meter;
- the same sum meter over 10,000 "anniversary" windows that start and end mid-hour (rollups plus
  raw edge hours), and over 20,000 windows (every customer's month split in two by a plan change);
- event_values_bulk over the 10,000 monthly windows (percentage pricing's per-event amounts);
- baseline: 100 usage_get calls for random customers per meter, extrapolated to 10,000.

Every bulk figure for the sampled customers is checked against usage_get. The last line is JSON.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from ingest import manage  # noqa: E402

SLUG = "usagebulkbench"
EVENTS = int(os.environ.get("BENCH_BULK_EVENTS", "3000000"))
CUSTOMERS = 10_000
REPEAT = int(os.environ.get("BENCH_BULK_REPEAT", "3"))
BASELINE_CALLS = 100


def log(message: str) -> None:
    print(message, flush=True)


def last_closed_month() -> tuple[datetime, datetime]:
    from billing.periods import calendar_period_containing

    current, _ = calendar_period_containing(instant=datetime.now(UTC), timezone="UTC", interval="month")
    return calendar_period_containing(instant=current - timedelta(microseconds=1), timezone="UTC", interval="month")


def seed(start: datetime, end: datetime) -> str:
    from django.db import connection
    from django_tenants.utils import schema_context

    from metering.models import Meter
    from metering.services.meter import meter_create
    from metering.services.partitions import partitions_maintain
    from metering.services.rollups import rollups_rebuild
    from tenants.models import Tenant
    from tenants.services.tenant_provision import tenant_create

    tenant = Tenant.objects.filter(slug=SLUG).first() or tenant_create(name="Usage bulk bench", slug=SLUG).tenant
    with schema_context(tenant.schema_name):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM metering_event")
            have = cursor.fetchone()[0]
        if have == EVENTS and Meter.objects.count() == 4:
            log(f"reusing {have:,} seeded events")
            return tenant.schema_name
        Meter.objects.all().delete()
        # Rollups are built by the rebuild below, so the backfill tasks these enqueue are not needed.
        common = {"actor": None, "event_type": "api_request"}
        meter_create(**common, code="requests", name="Requests", aggregation="count")
        meter_create(
            **common, code="bytes", name="Bytes", aggregation="sum", value_property="bytes", group_by=["region"]
        )
        meter_create(**common, code="users", name="Active users", aggregation="unique_count", value_property="user")
        meter_create(**common, code="seats", name="Seats", aggregation="weighted_sum", value_property="seats")
        connection.tenant = tenant
        partitions_maintain()
        log(f"seeding {EVENTS:,} events for {CUSTOMERS:,} customers over {start:%Y-%m} in SQL …")
        started = time.perf_counter()
        seconds = int((end - start).total_seconds())
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE metering_event, metering_rollup")
            cursor.execute(
                'INSERT INTO metering_event (event_id, customer, event_type, "timestamp", properties, received_at) '
                "SELECT 'seed-' || g, 'cust-' || lpad((g %% %s)::text, 5, '0'), 'api_request', "
                "%s::timestamptz + make_interval(secs => (g * 7919) %% %s + (g %% 1000) / 1000.0), "
                "jsonb_build_object('bytes', (g * 31) %% 100000, 'region', (ARRAY['eu','us','ap'])[1 + g %% 3], "
                "'user', 'u' || ((g / %s) %% 50), 'seats', 1 + (g / %s) %% 20), now() "
                "FROM generate_series(1::bigint, %s::bigint) AS g",
                [CUSTOMERS, start, seconds, CUSTOMERS, CUSTOMERS * 7, EVENTS],
            )
            cursor.execute("ANALYZE metering_event")
        log(f"  inserted in {time.perf_counter() - started:.0f}s; building rollups …")
        started = time.perf_counter()
        rows = rollups_rebuild()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE metering_rollup")
        log(f"  {rows:,} rollup rows in {time.perf_counter() - started:.0f}s")
    return tenant.schema_name


def best_of(function) -> tuple[float, object]:
    """The fastest of REPEAT runs (seconds) and the last result."""
    best, result = float("inf"), None
    for _ in range(REPEAT):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    log("migrating …")
    manage("platform_migrate", "-v", "0")
    import django

    django.setup()
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    from metering.models import Meter
    from metering.selectors.usage import usage_get
    from metering.selectors.usage_bulk import UsageWindow, event_values_bulk, usage_bulk

    start, end = last_closed_month()
    schema = seed(start, end)
    customers = [f"cust-{n:05d}" for n in range(CUSTOMERS)]
    rng = random.Random(7)
    monthly = [UsageWindow(c, start, end) for c in customers]
    # Anniversary-like windows: each customer's own mid-hour start, 27 days on.
    shifted = []
    for c in customers:
        offset = timedelta(seconds=rng.randrange(0, 3 * 86400))
        shifted.append(UsageWindow(c, start + offset, start + offset + timedelta(days=27)))
    # A plan change mid-month splits every period in two.
    split = []
    for c in customers:
        cut = start + timedelta(seconds=rng.randrange(86400, 28 * 86400))
        split += [UsageWindow(c, start, cut), UsageWindow(c, cut, end)]

    results: dict[str, float] = {"events": float(EVENTS), "customers": float(CUSTOMERS)}
    with schema_context(schema):
        meters = {m.code: m for m in Meter.objects.all()}
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM metering_rollup")
            results["rollup_rows"] = float(cursor.fetchone()[0])
        log(f"{EVENTS:,} events, {int(results['rollup_rows']):,} rollup rows, windows over {start:%Y-%m}")

        cases = [
            ("sum_monthly", "bytes", monthly, False),
            ("sum_grouped_monthly", "bytes", monthly, True),
            ("count_monthly", "requests", monthly, False),
            ("sum_anniversary_mid_hour", "bytes", shifted, False),
            ("sum_split_20k_windows", "bytes", split, False),
            ("unique_count_monthly", "users", monthly, False),
            ("weighted_sum_monthly", "seats", monthly, False),
        ]
        bulk: dict[str, dict] = {}
        for name, code, windows, group_by in cases:
            with CaptureQueriesContext(connection) as context:
                seconds, got = best_of(
                    lambda c=code, w=windows, g=group_by: usage_bulk(meter=meters[c], windows=w, group_by=g)
                )
            statements = sum(1 for q in context.captured_queries if not q["sql"].startswith("SET ")) // REPEAT
            bulk[name] = got
            results[f"bulk_{name}_s"] = seconds
            log(
                f"usage_bulk {name:>26}: {seconds * 1000:8.0f} ms for {len(windows):,} windows, {statements} statements"
            )

        seconds, values = best_of(lambda: event_values_bulk(meter=meters["bytes"], windows=monthly))
        count = sum(len(v[()]) for v in values.values())
        results["bulk_event_values_monthly_s"] = seconds
        log(f"event_values_bulk {'sum_monthly':>19}: {seconds * 1000:8.0f} ms for 10,000 windows, {count:,} values")
        reset_queries()

        # Baseline in the same run: one usage_get per window, for a sample, extrapolated.
        sample = rng.sample(range(CUSTOMERS), BASELINE_CALLS)
        for name, code, windows, group_by in cases:
            started = time.perf_counter()
            expected = [
                usage_get(
                    meter=meters[code],
                    customer=windows[i].customer,
                    start=windows[i].start,
                    end=windows[i].end,
                    group_by=group_by,
                )
                for i in sample
            ]
            per_call = (time.perf_counter() - started) / BASELINE_CALLS
            results[f"baseline_{name}_s"] = per_call * len(windows)
            for i, one in zip(sample, expected, strict=True):
                got = bulk[name][windows[i]]
                assert got.value == one.value, (name, windows[i], got, one)
                assert got.groups == {tuple(g["group"].values()): g["value"] for g in one.groups}, (name, windows[i])
            log(
                f"baseline usage_get {name:>18}: {per_call * 1000:6.2f} ms per call -> "
                f"{per_call * len(windows):6.1f} s for {len(windows):,} windows "
                f"({per_call * len(windows) / results[f'bulk_{name}_s']:.0f}x the bulk time)"
            )
        for i in sample[:20]:
            assert sum(values[monthly[i]][()]) == bulk["sum_monthly"][monthly[i]].value
    print(json.dumps({k: round(v, 4) for k, v in results.items()}))


if __name__ == "__main__":
    main()
