"""Ingestion benchmark (`make bench-ingest`).

Runs the stack as in production on this machine: uvicorn with WEB_CONCURRENCY (default 6) workers serving config.asgi,
drainer processes, PostgreSQL and Redis (embedded unless DATABASE_URL/REDIS_URL are set), and
drives it over HTTP from separate load processes. Phases:

1. accept: 1,000-event batches of 200-300 byte events (~5 % duplicates) from 2 processes x 4
   connections, drainers stopped → accepted events/s and request p50/p95/p99;
2. process: two drainers drain that backlog → processed (stored, deduplicated, rolled up) events/s;
3. baseline, same run: COPY of the same events into an identical partitioned table → COPY
   events/s and the ratio processed / COPY;
4. single: one event per request from wrk (2 threads x 16 connections; a Python client if wrk
   is missing) → requests/s and p95;
5. lag: ~20k events/s of steady load with the drainers running; each second a marker event for
   a fresh customer, polled through GET /api/v1/usage until it counts → acceptance→queryable p95.

The last line is one JSON object: accepted_eps, accept_p95_ms, processed_eps, copy_eps, ratio,
single_rps, single_p95_ms, lag_p95_s.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_ENV", "production" if os.environ.get("BENCH_PRODUCTION") else "development")

SLUG = "bench"
HOST = f"{SLUG}.localhost"
ACCEPT_BATCHES = int(os.environ.get("BENCH_BATCHES", "600"))
BATCH_SIZE = 1000
CUSTOMERS = 2000
# Django runs sync views on one thread per worker process, so each worker commits one request at
# a time; more workers let PostgreSQL group concurrent commits (the single-event phase needs it).
WEB_WORKERS = int(os.environ.get("WEB_CONCURRENCY", "6"))


def log(message: str) -> None:
    print(message, flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- data ------------------------------------------------------------------------------------


def make_batches(seed: int, count: int) -> list[bytes]:
    """`count` bodies of BATCH_SIZE events, ~5 % of them repeats of earlier ids."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    seen: list[str] = []
    bodies = []
    for b in range(count):
        events = []
        for i in range(BATCH_SIZE):
            if seen and rng.random() < 0.05:
                event_id = rng.choice(seen)
            else:
                event_id = f"s{seed}-b{b}-e{i}-{rng.getrandbits(40):x}"
                seen.append(event_id)
            events.append(
                {
                    "id": event_id,
                    "customer": f"cust-{rng.randrange(CUSTOMERS):05d}",
                    "type": "api_request",
                    "timestamp": (now - timedelta(seconds=rng.randrange(3600))).isoformat(),
                    "properties": {
                        "region": rng.choice(["eu-west-1", "us-east-1", "ap-south-1"]),
                        "endpoint": rng.choice(["/v1/search", "/v1/items", "/v1/orders/lookup"]),
                        "bytes": rng.randrange(100, 1_000_000),
                        "status": rng.choice([200, 200, 200, 201, 404, 500]),
                        "latency_ms": rng.randrange(1, 900),
                    },
                }
            )
        bodies.append(msgspec.json.encode({"events": events}))
    return bodies


# --- load processes --------------------------------------------------------------------------


def _post_worker(args) -> tuple[list[float], int, int]:
    base, key, bodies, threads = args
    latencies: list[float] = []
    accepted = 0
    errors = 0
    lock = threading.Lock()
    queue = list(bodies)

    def run():
        nonlocal accepted, errors
        session = requests.Session()
        headers = {"Host": HOST, "Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            started = time.perf_counter()
            response = session.post(f"{base}/api/v1/events", data=body, headers=headers, timeout=60)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if response.status_code == 202:
                    accepted += response.json()["accepted"]
                else:
                    errors += 1

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return latencies, accepted, errors


def _single_worker(args) -> tuple[list[float], int]:
    base, key, seconds, threads, seed = args
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run(tid):
        nonlocal errors
        session = requests.Session()
        headers = {"Host": HOST, "Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        n = 0
        while time.monotonic() < deadline:
            n += 1
            body = msgspec.json.encode(
                {
                    "id": f"single-{seed}-{tid}-{n}",
                    "customer": f"cust-{n % CUSTOMERS:05d}",
                    "type": "api_request",
                    "properties": {"bytes": n, "region": "eu-west-1"},
                }
            )
            started = time.perf_counter()
            response = session.post(f"{base}/api/v1/events", data=body, headers=headers, timeout=30)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                errors += response.status_code != 202

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return latencies, errors


# wrk (a C load generator) for the single-event phase: a Python client would spend on each
# request about the CPU the server does, on the same two cores.
WRK_SCRIPT = r"""
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  prefix = args[1] .. "-" .. tid
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"id":"w-%s-%d","customer":"cust-%05d","type":"api_request","properties":{"bytes":%d,"region":"eu-west-1"}}',
    prefix, counter, counter % 2000, counter)
  return wrk.format("POST", "/api/v1/events", nil, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %.3f %.3f %d\n", summary.requests, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def single_with_wrk(base: str, key: str, seconds: int) -> tuple[float, float, float, int] | None:
    """(requests/s, p50 ms, p95 ms, errors) from wrk, or None when wrk is not installed."""
    import shutil
    import tempfile

    if shutil.which("wrk") is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c16",
            f"-d{seconds}s",
            "-s",
            script.name,
            "-H",
            f"Host: {HOST}",
            "-H",
            f"Authorization: Bearer {key}",
            "-H",
            "Content-Type: application/json",
            base,
            "--",
            f"r{time.time_ns()}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    line = next(line for line in out.splitlines() if line.startswith("WRK "))
    requests_done, duration_us, p50, p95, errors = line.split()[1:]
    return int(requests_done) / (int(duration_us) / 1e6), float(p50), float(p95), int(errors)


# --- the stack -------------------------------------------------------------------------------


def manage(*args: str, env=None) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env or os.environ,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def setup_tenant() -> str:
    import django

    django.setup()
    from django_tenants.utils import schema_context

    from accounts.services.api_key import apikey_create
    from metering.models import Meter
    from metering.services.meter import meter_create
    from tenants.models import Tenant
    from tenants.services.tenant_provision import tenant_create

    tenant = Tenant.objects.filter(slug=SLUG).first() or tenant_create(name="Bench", slug=SLUG).tenant
    with schema_context(tenant.schema_name):
        from django.db import connection

        with connection.cursor() as cursor:  # a clean slate for every run
            cursor.execute("TRUNCATE metering_landing, metering_event_id, metering_event, metering_rollup")
        if not Meter.objects.exists():
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
                code="errors",
                name="Server errors",
                event_type="api_request",
                aggregation="count",
                filters=[{"property": "status", "operator": "eq", "value": 500}],
            )
        return apikey_create(name=f"bench-{int(time.time())}", scopes=["ingest", "read"], actor=None).secret


def start_web(port: int, env) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--port",
            str(port),
            "--workers",
            str(WEB_WORKERS),
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("web did not start")


def drainer_procs(n: int, env) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "manage.py", "metering_drain"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]


def stop(procs) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM) if proc.pid == os.getpgid(proc.pid) else proc.terminate()
    for proc in procs:
        proc.wait(timeout=60)


def sql(query: str, params=None):
    from django.db import connection
    from django_tenants.utils import schema_context

    with schema_context(f"t_{SLUG}"), connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else None


def copy_baseline(bodies: list[bytes]) -> float:
    """The physical floor, same run: COPY the same (unique) events into identical copies of the
    two tables an event is stored in here: the partitioned, indexed event table and the id ledger
    whose primary key makes events unique. No dedup logic, no rollups; one transaction per 20,000
    rows, like the drainer's. Returns events per second."""
    from django.db import connection, transaction
    from django_tenants.utils import schema_context

    from metering.ingest import decode_events as decode
    from metering.ingest import decode_landing, encode_landing

    rows = {}
    now = datetime.now(UTC)
    for body in bodies:
        decoded = decode(body, content_type="application/json", now=now, window=timedelta(days=35))
        for e in decode_landing(encode_landing(decoded.events)):
            rows.setdefault(e.id, (e.id, e.customer, e.type, e.timestamp, bytes(e.properties).decode(), now))
    rows = list(rows.values())
    with schema_context(f"t_{SLUG}"), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy, bench_copy_ids")
        cursor.execute('CREATE TABLE bench_copy (LIKE metering_event INCLUDING ALL) PARTITION BY RANGE ("timestamp")')
        cursor.execute("CREATE TABLE bench_copy_ids (LIKE metering_event_id INCLUDING ALL)")
        months = {r[3].replace(day=1, hour=0, minute=0, second=0, microsecond=0) for r in rows}
        for m in months:
            nxt = (m + timedelta(days=32)).replace(day=1)
            cursor.execute(
                f"CREATE TABLE bench_copy_{m:%Y%m} PARTITION OF bench_copy FOR VALUES FROM ('{m.isoformat()}') "
                f"TO ('{nxt.isoformat()}')"
            )
        started = time.perf_counter()
        chunk = 20_000
        for i in range(0, len(rows), chunk):
            part = rows[i : i + chunk]
            with transaction.atomic(), connection.cursor() as c2:
                with c2.cursor.copy("COPY bench_copy_ids (event_id, received_at) FROM STDIN") as copy:
                    for row in part:
                        copy.write_row((row[0], row[5]))
                with c2.cursor.copy(
                    'COPY bench_copy (event_id, customer, event_type, "timestamp", properties, received_at) FROM STDIN'
                ) as copy:
                    for row in part:
                        copy.write_row(row)
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy, bench_copy_ids")
    return len(rows) / elapsed


def main() -> None:
    env = dict(os.environ)
    env.setdefault("INGEST_EVENTS_PER_SECOND_PER_KEY", "100000000")
    env.setdefault("INGEST_EVENTS_PER_SECOND_PER_TENANT", "100000000")
    os.environ.update(env)
    log("migrating (first run only takes a minute) …")
    manage("platform_migrate", "-v", "0", env=env)
    key = setup_tenant()
    port = 18000 + random.randrange(1000)
    base = f"http://127.0.0.1:{port}"
    log(f"generating {ACCEPT_BATCHES} batches of {BATCH_SIZE} events …")
    bodies = make_batches(1, ACCEPT_BATCHES)
    sizes = [len(b) / BATCH_SIZE for b in bodies[:10]]
    log(f"  {statistics.mean(sizes):.0f} bytes per event on the wire")
    web = start_web(port, env)
    results: dict[str, float] = {}
    try:
        # 1. accept
        procs, threads = 2, 4
        shards = [bodies[i::procs] for i in range(procs)]
        started = time.perf_counter()
        with mp.get_context("spawn").Pool(procs) as pool:
            outs = pool.map(_post_worker, [(base, key, shard, threads) for shard in shards])
        elapsed = time.perf_counter() - started
        latencies = [x for o in outs for x in o[0]]
        accepted = sum(o[1] for o in outs)
        errors = sum(o[2] for o in outs)
        results["accepted_eps"] = accepted / elapsed
        results["accept_p95_ms"] = percentile(latencies, 0.95) * 1000
        log(
            f"accept: {accepted} events in {elapsed:.1f}s = {results['accepted_eps']:,.0f} events/s; "
            f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p95 {results['accept_p95_ms']:.0f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms; {errors} errors"
        )

        # 2. process
        waiting = sql("SELECT coalesce(sum(event_count), 0) FROM metering_landing")[0][0]
        started = time.perf_counter()
        drainers = drainer_procs(2, env)
        while sql("SELECT count(*) FROM metering_landing")[0][0]:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        stored = sql("SELECT count(*) FROM metering_event")[0][0]
        results["processed_eps"] = waiting / elapsed
        log(
            f"process: {waiting} events ({stored} unique stored, rolled up) in {elapsed:.1f}s = "
            f"{results['processed_eps']:,.0f} events/s with 2 drainers"
        )

        # 3. COPY baseline of the same events
        stop(drainers)
        results["copy_eps"] = copy_baseline(bodies)
        results["ratio"] = results["processed_eps"] / results["copy_eps"]
        log(
            "baseline: COPY of the same unique events into identical event + id-ledger tables "
            f"{results['copy_eps']:,.0f} events/s; processed/COPY = {results['ratio']:.2f}"
        )

        # 4. single events
        drainers = drainer_procs(1, env)
        seconds = 10
        measured = single_with_wrk(base, key, seconds)
        if measured is not None:
            results["single_rps"], p50, results["single_p95_ms"], errors = measured
            client = "wrk, 2 threads x 16 connections"
        else:
            with mp.get_context("spawn").Pool(2) as pool:
                outs = pool.map(_single_worker, [(base, key, seconds, 8, s) for s in range(2)])
            latencies = [x for o in outs for x in o[0]]
            results["single_rps"] = len(latencies) / seconds
            results["single_p95_ms"] = percentile(latencies, 0.95) * 1000
            p50, errors = percentile(latencies, 0.5) * 1000, sum(o[1] for o in outs)
            client = "Python client (wrk not installed), 2 processes x 8 threads"
        log(
            f"single: {results['single_rps']:,.0f} requests/s, p50 {p50:.1f} ms, "
            f"p95 {results['single_p95_ms']:.1f} ms; {errors} errors ({client})"
        )
        stop(drainers)

        # 5. lag at ~20k events/s
        drainers = drainer_procs(2, env)
        results["lag_p95_s"] = measure_lag(base, key)
        stop(drainers)
    finally:
        stop([web])
    log(f"lag: event accepted → counted by the usage API p95 {results['lag_p95_s']:.2f} s at ~20k events/s")
    print(json.dumps({k: round(v, 3) for k, v in results.items()}))


def measure_lag(base: str, key: str, seconds: int = 15, eps: int = 20_000) -> float:
    bodies = make_batches(2, seconds * eps // BATCH_SIZE + 5)
    stop_flag = threading.Event()
    lags: list[float] = []
    headers = {"Host": HOST, "Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def steady():
        session = requests.Session()
        interval = BATCH_SIZE / eps
        next_at = time.monotonic()
        for body in bodies:
            if stop_flag.is_set():
                return
            session.post(f"{base}/api/v1/events", data=body, headers=headers, timeout=30)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def probe(n: int):
        session = requests.Session()
        customer = f"lag-{int(time.time())}-{n}"
        body = msgspec.json.encode(
            {
                "id": f"{customer}-marker",
                "customer": customer,
                "type": "api_request",
                "properties": {"bytes": 1, "region": "eu-west-1", "status": 200},
            }
        )
        response = session.post(f"{base}/api/v1/events", data=body, headers=headers, timeout=30)
        accepted_at = time.monotonic()
        assert response.status_code == 202
        while time.monotonic() - accepted_at < 30:
            usage = session.get(
                f"{base}/api/v1/usage", params={"customer": customer, "meter": "requests"}, headers=headers, timeout=10
            )
            if usage.status_code == 200 and usage.json().get("value") in ("1", 1):
                lags.append(time.monotonic() - accepted_at)
                return
            time.sleep(0.02)
        lags.append(float("inf"))

    load = threading.Thread(target=steady)
    load.start()
    probes = []
    for n in range(seconds):
        t = threading.Thread(target=probe, args=(n,))
        t.start()
        probes.append(t)
        time.sleep(1)
    for t in probes:
        t.join()
    stop_flag.set()
    load.join()
    return percentile(lags, 0.95)


if __name__ == "__main__":
    main()
