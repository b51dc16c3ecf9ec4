"""Outbound webhook benchmark (`make bench-webhooks`): deliveries per second from the outbox to a
local receiver, and commit → delivery latency.

    TEST_DATA_DIR=.data/bench DJANGO_ENV=development \\
        .venv/bin/python -m config.embedded exec -- .venv/bin/python bench/webhooks.py

Set-up: tenant `webhookbench` with one endpoint (every event) at a receiver on 127.0.0.1
(bench/webhook_receiver.py under uvicorn: answers 204 and records when each webhook-id arrived),
and one Celery worker: BENCH_WEBHOOKS_POOL (default prefork) with BENCH_WEBHOOKS_CONCURRENCY
(default 2), as `make run`'s worker (each process sends a task's webhooks 8 at a time on its own
sender threads, so the pool needs no more processes for the network waits). The worker keeps its
database connections between tasks (DB_CONN_MAX_AGE=60, production's default; development closes
them after every task). The producer is this process: `webhook_emit_bulk` inside transactions,
as the services emit, recording each message's commit time.

1. Baseline, the receiver alone: BENCH_WEBHOOKS_EVENTS bare POSTs of the same signed body from 2
   client processes (urllib3, keep-alive), as fast as it answers.
2. Throughput: BENCH_WEBHOOKS_EVENTS (default 10,000: several seconds at the rates measured)
   events committed in transactions of 50 (one dispatch task each), as fast as the producer goes
   (it shares the cores with the worker: a commit costs the platform too); deliveries/s = events /
   (last arrival - first commit); p50/p95 of commit → arrival.
3. Latency under a steady load: BENCH_WEBHOOKS_RATE events/s (default 200) for 10 s in
   transactions of 5; p50/p95/p99 of commit → arrival.

Each delivery is the real path: claim (conditional UPDATE), endpoint read, secret decrypted,
Standard Webhooks signature, the SSRF-checked POST, the attempt log row, the done mark. The last
line is JSON."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")  # no query log, as in production

from ingest import manage  # noqa: E402

SLUG = "webhookbench"
EVENTS = int(os.environ.get("BENCH_WEBHOOKS_EVENTS", "10000"))
RATE = int(os.environ.get("BENCH_WEBHOOKS_RATE", "200"))
POOL = os.environ.get("BENCH_WEBHOOKS_POOL", "prefork")
CONCURRENCY = int(os.environ.get("BENCH_WEBHOOKS_CONCURRENCY", "2"))
STEADY_SECONDS = 10
PER_TRANSACTION = 50


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def payload(n: int) -> dict:
    """About the size of an invoice.finalized event's data."""
    return {
        "id": n,
        "number": f"INV-{n:06d}",
        "status": "open",
        "customer": f"customer-{n % 1000}",
        "subscription": n,
        "currency": "EUR",
        "period_start": "2027-01-01T00:00:00+00:00",
        "period_end": "2027-02-01T00:00:00+00:00",
        "subtotal": "49.00",
        "tax_total": "9.31",
        "total": "58.31",
        "credits_applied": "0.00",
        "amount_due": "58.31",
        "amount_paid": "0.00",
        "issued_at": "2027-02-02T00:00:00+00:00",
        "due_at": "2027-03-04T00:00:00+00:00",
        "paid_at": None,
        "voided_at": None,
    }


def _post_many(url: str, count: int, body: bytes, headers: dict, out) -> None:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", int(url.split(":")[2].split("/")[0]), maxsize=1)
    for n in range(count):
        response = pool.urlopen(
            "POST", "/hooks", body=body, headers={**headers, "webhook-id": f"base_{os.getpid()}_{n}"}
        )
        response.read()
    out.put(count)


def baseline(url: str, body: bytes, headers: dict) -> float:
    """Bare POSTs to the receiver from 2 processes: the ceiling the deliveries compare with."""
    out = mp.Queue()
    per = EVENTS // 2
    procs = [mp.Process(target=_post_many, args=(url, per, body, headers, out)) for _ in range(2)]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return 2 * per / (time.perf_counter() - started)


def stats(base: str) -> dict:
    return json.loads(urllib3.request("GET", f"{base}/stats", retries=False).data)


def wait_arrivals(base: str, ids: list[str], timeout: float = 600) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        arrivals = stats(base)["arrivals"]
        if all(i in arrivals for i in ids):
            return arrivals
        if time.monotonic() > deadline:
            missing = [i for i in ids if i not in arrivals]
            raise RuntimeError(f"{len(missing)} deliveries missing after {timeout}s, e.g. {missing[:3]}")
        time.sleep(0.2)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def emit(count: int, per_transaction: int, first: int) -> dict[str, float]:
    """Commit `count` events in transactions of `per_transaction`; webhook-id → commit time."""
    from django.db import transaction

    from core.services.webhook_emit import webhook_emit_bulk

    committed: dict[str, float] = {}
    for start in range(0, count, per_transaction):
        with transaction.atomic():
            ids = webhook_emit_bulk(
                [("invoice.finalized", payload(first + n)) for n in range(start, min(count, start + per_transaction))]
            )
        now = time.time()  # the dispatch tasks were enqueued on commit, just before
        committed.update((f"msg_{pk}", now) for pk in ids)
    return committed


def main() -> None:
    log("migrating …")
    manage("platform_migrate", "-v", "0")
    import django

    django.setup()
    from django.db import connection
    from django_tenants.utils import schema_context

    from core.models import OutboxMessage, WebhookDelivery, WebhookEndpoint
    from core.services.webhook_delivery import webhook_sign
    from core.services.webhook_endpoint import webhook_endpoint_create
    from tenants.models import Tenant
    from tenants.services.tenant_provision import tenant_create

    tenant = Tenant.objects.filter(slug=SLUG).first() or tenant_create(name="Webhook bench", slug=SLUG).tenant
    port = free_port()
    receiver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "webhook_receiver:app",
            "--app-dir",
            str(ROOT / "bench"),
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--lifespan",
            "off",
        ],
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    worker = None
    try:
        for _ in range(100):
            try:
                stats(base)
                break
            except Exception:  # noqa: BLE001 (not up yet)
                time.sleep(0.1)
        with schema_context(tenant.schema_name):
            connection.tenant = tenant
            WebhookEndpoint.objects.all().delete()
            with connection.cursor() as cursor:
                cursor.execute(
                    f"TRUNCATE {OutboxMessage._meta.db_table}, {WebhookDelivery._meta.db_table} RESTART IDENTITY"
                )
            secret = webhook_endpoint_create(url=f"{base}/hooks").secret
            body = json.dumps({"type": "invoice.finalized", "data": payload(1)}, separators=(",", ":"))
            headers = {
                "content-type": "application/json",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": webhook_sign(secrets=[secret], msg_id="msg_1", at=datetime.now(UTC), body=body),
            }

            log(f"baseline: {EVENTS:,} bare POSTs to the receiver from 2 processes …")
            receiver_alone = baseline(base + "/hooks", body.encode(), headers)
            log(f"  receiver alone: {receiver_alone:,.0f} requests/s")
            urllib3.request("POST", f"{base}/reset")

            log(f"starting a Celery worker ({POOL} pool, concurrency {CONCURRENCY}) …")
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool",
                    POOL,
                    "--concurrency",
                    str(CONCURRENCY),
                    "-Q",
                    "default",
                    "--loglevel",
                    "WARNING",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=ROOT,
                # Database connections kept between tasks, as production's default (DB_CONN_MAX_AGE).
                env={**os.environ, "DB_CONN_MAX_AGE": os.environ.get("DB_CONN_MAX_AGE", "60")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            worker_log: deque[str] = deque(maxlen=50)  # read so the pipe never fills; shown on failure
            threading.Thread(target=lambda: worker_log.extend(worker.stderr), daemon=True).start()
            # The worker is up once a first delivery arrives.
            probe = emit(1, 1, first=0)
            wait_arrivals(base, list(probe), timeout=120)
            urllib3.request("POST", f"{base}/reset")

            log(f"throughput: {EVENTS:,} events committed in transactions of {PER_TRANSACTION} …")
            started = time.time()
            committed = emit(EVENTS, PER_TRANSACTION, first=1)
            produced = time.time() - started
            arrivals = wait_arrivals(base, list(committed))
            first_commit = min(committed.values())
            span = max(arrivals[i] for i in committed) - first_commit
            burst_latency = [arrivals[i] - committed[i] for i in committed]
            delivered_per_s = EVENTS / span
            log(
                f"  {EVENTS:,} delivered in {span:.2f}s: {delivered_per_s:,.0f} deliveries/s "
                f"[receiver alone: {receiver_alone:,.0f}/s]; produced at {EVENTS / produced:,.0f} events/s; "
                f"commit → delivery p50 {statistics.median(burst_latency):.3f}s, "
                f"p95 {percentile(burst_latency, 95):.3f}s"
            )
            posts = stats(base)["posts"]

            steady_count = RATE * STEADY_SECONDS
            log(f"steady: {RATE} events/s for {STEADY_SECONDS}s in transactions of 5 …")
            committed = {}
            started = time.time()
            for step in range(steady_count // 5):
                due = started + step * 5 / RATE
                if (pause := due - time.time()) > 0:
                    time.sleep(pause)
                committed.update(emit(5, 5, first=100_000 + step * 5))
            arrivals = wait_arrivals(base, list(committed))
            steady = [arrivals[i] - committed[i] for i in committed]
            log(
                f"  commit → delivery p50 {statistics.median(steady):.3f}s, p95 {percentile(steady, 95):.3f}s, "
                f"p99 {percentile(steady, 99):.3f}s"
            )
            failed = WebhookDelivery.objects.filter(succeeded=False).count()
            done = OutboxMessage.objects.filter(status="done").count()
    except Exception:
        if worker is not None:
            log("worker log (last lines):\n" + "".join(worker_log))
        raise
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=30)
    result = {
        "events": EVENTS,
        "deliveries_per_s": round(delivered_per_s),
        "receiver_alone_per_s": round(receiver_alone),
        "burst_p95_s": round(percentile(burst_latency, 95), 3),
        "steady_rate": RATE,
        "steady_p50_s": round(statistics.median(steady), 3),
        "steady_p95_s": round(percentile(steady, 95), 3),
        "steady_p99_s": round(percentile(steady, 99), 3),
        "duplicate_posts": posts - EVENTS,
        "failed_attempts": failed,
        "outbox_done": done,
        "worker_pool": POOL,
        "worker_concurrency": CONCURRENCY,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
