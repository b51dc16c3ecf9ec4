"""Payments benchmark (`make bench-payments`): invoices collected per second through the real
gateway code, and inbound gateway webhooks verified and applied per second.

    TEST_DATA_DIR=.data/bench DJANGO_ENV=development \\
        .venv/bin/python -m config.embedded exec -- .venv/bin/python bench/payments.py

Set-up: tenant `paybench` with BENCH_PAYMENTS_INVOICES (default 10,000) organizations, each with a
default method (even ones a card, odd ones a SEPA debit) and one finalized, open invoice, and the
tenant's Stripe settings pointing at bench/stripe_responder.py under uvicorn on 127.0.0.1 (a local
responder speaking Stripe's PaymentIntent API: localstripe is too slow for this).

1. Baseline, same run: the bare HTTP round-trips of a collection (create + confirm, form-encoded
   with idempotency keys, urllib3 keep-alive) from BENCH_PAYMENTS_WORKERS processes: pairs/s.
2. Collections: the `payments.collect` outbox messages written by `collections_enqueue` in one
   finalizing transaction, run by BENCH_PAYMENTS_WORKERS (default 4) processes with the outbox's
   own `outbox_process` (claim, handler, done): per invoice the payment row under the invoice
   lock, two attempts recorded around two SDK calls (StripeGateway, official `stripe` SDK), the
   answer recorded by the ledger (cards succeed and pay the invoice, debits stay processing).
   collections/s = invoices / wall time.
3. Webhooks: one `payment_intent.succeeded` per charge, signed as Stripe signs them, POSTed to
   `/payments/stripe/webhook` on the tenant's host, served by uvicorn (config.asgi, BENCH_WEB_WORKERS,
   default 2) from 2 client processes x BENCH_PAYMENTS_CONNECTIONS (default 8) connections: each
   verified (SDK signature check, 300 s), stored once per event id, applied by the ledger (the
   debits settle and pay their invoices; the cards' are already recorded). webhooks/s = events /
   wall time.

double_charges: invoices the responder charged more than once (must be 0). The last line is JSON:
collections_per_s, webhooks_per_s, double_charges, baseline_per_s."""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing as mp
import os
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")  # no query log, as in production

from ingest import manage  # noqa: E402
from procs import cpu_seconds, cpu_text, free_port, serve, stop, wait_http  # noqa: E402

SLUG = "paybench"
HOST = f"{SLUG}.localhost"
INVOICES = int(os.environ.get("BENCH_PAYMENTS_INVOICES", "10000"))
WORKERS = int(os.environ.get("BENCH_PAYMENTS_WORKERS", "4"))
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
CONNECTIONS = int(os.environ.get("BENCH_PAYMENTS_CONNECTIONS", "8"))
APPLIERS = int(os.environ.get("BENCH_PAYMENTS_APPLIERS", "2"))
SECRET_KEY = "sk_test_" + "b" * 24
WEBHOOK_SECRET = "whsec_bench"
AMOUNT = Decimal("58.31")


def log(message: str) -> None:
    print(message, flush=True)


# --- set-up ----------------------------------------------------------------------------------


def seed(schema: str) -> list[int]:
    """A clean slate, then INVOICES organizations with a default method and an open invoice;
    their collection messages written as finalization writes them. The outbox ids."""
    from django.db import connection, transaction
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from billing.models import Organization
    from invoicing.models import Invoice, InvoiceStatus
    from payments.models import GatewaySettings, PaymentCustomer
    from payments.services.collection import collections_enqueue

    with schema_context(schema):
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE payments_gatewayeventrecord, payments_refund, payments_paymentattempt, payments_payment, "
                "payments_paymentcustomer, core_outboxmessage, invoicing_invoice, billing_organization, "
                "auditlog_logentry CASCADE"
            )
        GatewaySettings.objects.all().delete()
        row = GatewaySettings(stripe_publishable_key="pk_test_bench")
        row.stripe_secret_key_set(SECRET_KEY)
        row.stripe_webhook_secret_set(WEBHOOK_SECRET)
        row.save()
        organizations = Organization.objects.bulk_create(
            [
                Organization(external_id=f"c{n:05d}", name=f"Customer {n}", currency="EUR", country="DE")
                for n in range(INVOICES)
            ],
            batch_size=2000,
        )
        PaymentCustomer.objects.bulk_create(
            [
                PaymentCustomer(
                    organization=org,
                    gateway_customer_id=f"cus_bench{n:05d}",
                    default_payment_method_id=f"pm_bench{n:05d}",
                    default_method_type="card" if n % 2 == 0 else "sepa_debit",
                    default_method_label="visa •••• 4242" if n % 2 == 0 else "SEPA •••• 3000",
                )
                for n, org in enumerate(organizations)
            ],
            batch_size=2000,
        )
        now = timezone.now()
        invoices = Invoice.objects.bulk_create(
            [
                Invoice(
                    organization=org,
                    status=InvoiceStatus.OPEN,
                    number=f"PB-{n:06d}",
                    currency="EUR",
                    subtotal=Decimal("49.00"),
                    tax_total=Decimal("9.31"),
                    total=AMOUNT,
                    amount_due=AMOUNT,
                    issued_at=now,
                    due_at=now,
                )
                for n, org in enumerate(organizations)
            ],
            batch_size=2000,
        )
        with transaction.atomic():
            ids = collections_enqueue(invoices)
        connection.set_schema_to_public()
    return ids


# --- 1. baseline -----------------------------------------------------------------------------


def _bare_pairs(port: int, count: int, tag: str, out) -> None:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {SECRET_KEY}"}
    for n in range(count):
        body = (
            f"amount=5831&currency=eur&customer=cus_x&payment_method=pm_x&payment_method_types[0]=card"
            f"&metadata[invoice]=base-{tag}-{n}"
        )
        created = pool.urlopen(
            "POST", "/v1/payment_intents", body=body, headers={**headers, "Idempotency-Key": f"b{tag}-{n}:create"}
        )
        intent = json.loads(created.data)["id"]
        pool.urlopen(
            "POST",
            f"/v1/payment_intents/{intent}/confirm",
            body="off_session=true",
            headers={**headers, "Idempotency-Key": f"b{tag}-{n}:confirm"},
        ).read()
    out.put(count)


def baseline(port: int) -> float:
    out = mp.Queue()
    per = max(1, INVOICES // WORKERS)
    procs = [mp.Process(target=_bare_pairs, args=(port, per, str(i), out)) for i in range(WORKERS)]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return per * WORKERS / (time.perf_counter() - started)


# --- 2. collections --------------------------------------------------------------------------


def _collect(schema: str, ids: list[int], api_base: str, out) -> None:
    from django.conf import settings
    from django_tenants.utils import schema_context

    from core.services.outbox import outbox_process

    settings.STRIPE_API_BASE = api_base
    done = Counter()
    with schema_context(schema):
        for start in range(0, len(ids), 100):
            result = outbox_process(ids=ids[start : start + 100])
            done["done"] += result.done
            done["skipped"] += result.skipped
    out.put(dict(done))


def collect(schema: str, ids: list[int], api_base: str) -> tuple[float, Counter]:
    from django.db import connections

    connections.close_all()  # the children open their own
    context = mp.get_context("fork")
    out = context.Queue()
    slices = [ids[i::WORKERS] for i in range(WORKERS)]
    procs = [context.Process(target=_collect, args=(schema, s, api_base, out)) for s in slices]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    totals = Counter()
    for _ in procs:
        totals.update(out.get())
    for proc in procs:
        proc.join()
    return time.perf_counter() - started, totals


# --- 3. webhooks -----------------------------------------------------------------------------


def signed_events(intents: list[dict]) -> list[tuple[bytes, str]]:
    now = int(time.time())
    events = []
    for intent in intents:
        obj = {**intent, "status": "succeeded"}
        body = json.dumps(
            {
                "id": f"evt_{intent['id'][3:]}",
                "object": "event",
                "type": "payment_intent.succeeded",
                "created": now,
                "data": {"object": obj},
            }
        ).encode()
        digest = hmac.new(WEBHOOK_SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
        events.append((body, f"t={now},v1={digest}"))
    return events


def _post_events(port: int, events: list[tuple[bytes, str]], out) -> None:
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def run(chunk):
        pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1)
        local: Counter = Counter()
        for body, signature in chunk:
            response = pool.urlopen(
                "POST",
                "/payments/stripe/webhook",
                body=body,
                headers={"Host": HOST, "Content-Type": "application/json", "Stripe-Signature": signature},
            )
            local[json.loads(response.data).get("outcome", f"http {response.status}")] += 1
        with lock:
            outcomes.update(local)

    threads = [threading.Thread(target=run, args=(events[i::CONNECTIONS],)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(dict(outcomes))


def _apply_events(schema: str, expected: int, out) -> None:
    """A worker's runs of `gateway_events_apply_all` (what the scheduled task does), until every
    expected event is applied (none left `received`)."""
    from django_tenants.utils import schema_context

    from payments.models import GatewayEventRecord
    from payments.services.inbound import APPLY_DELAY, gateway_events_apply_all

    applied = 0
    with schema_context(schema):
        while True:
            done = gateway_events_apply_all()
            applied += done
            if not done:
                stored = GatewayEventRecord.objects.count()
                waiting = GatewayEventRecord.objects.filter(outcome=GatewayEventRecord.Outcome.RECEIVED).exists()
                if stored >= expected and not waiting:
                    break
                time.sleep(APPLY_DELAY)  # as the scheduled run waits
    out.put(applied)


def post_webhooks(port: int, events: list[tuple[bytes, str]], schema: str) -> tuple[float, float, Counter, int]:
    """Posted from 2 client processes while APPLIERS worker processes apply them: the time until
    every response came, and until every event was applied."""
    from django.db import connections

    connections.close_all()  # the appliers open their own
    context = mp.get_context("fork")
    out, applied_out = context.Queue(), context.Queue()
    procs = [context.Process(target=_post_events, args=(port, events[i::2], out)) for i in range(2)]
    appliers = [context.Process(target=_apply_events, args=(schema, len(events), applied_out)) for _ in range(APPLIERS)]
    started = time.perf_counter()
    for proc in procs + appliers:
        proc.start()
    outcomes: Counter = Counter()
    for _ in procs:
        outcomes.update(out.get())
    answered = time.perf_counter() - started
    applied = sum(applied_out.get() for _ in appliers)
    for proc in procs + appliers:
        proc.join()
    return answered, time.perf_counter() - started, outcomes, applied


def ledger(schema: str) -> dict:
    from django.db import connection
    from django.db.models import Count
    from django_tenants.utils import schema_context

    from invoicing.models import Invoice
    from payments.models import GatewayEventRecord, Payment

    with schema_context(schema):
        found = {
            "payments": dict(Payment.objects.values_list("status").annotate(n=Count("id"))),
            "invoices": dict(Invoice.objects.values_list("status").annotate(n=Count("id"))),
            "settled": Payment.objects.filter(settled_invoice=True).count(),
            "events": GatewayEventRecord.objects.count(),
        }
        connection.set_schema_to_public()
    return found


def main() -> None:
    log("migrating …")
    manage("platform_migrate", "-v", "0")
    import django

    django.setup()
    from tenants.models import Tenant
    from tenants.services.tenant_provision import tenant_create

    tenant = Tenant.objects.filter(slug=SLUG).first() or tenant_create(name="Payments bench", slug=SLUG).tenant
    schema = tenant.schema_name
    stripe_port, web_port = free_port(), free_port()
    responder = serve("stripe_responder:app", stripe_port, app_dir=str(ROOT / "bench"))
    web = serve("config.asgi:application", web_port, workers=WEB_WORKERS)
    stripe_base = f"http://127.0.0.1:{stripe_port}"
    try:
        wait_http(f"{stripe_base}/stats")
        wait_http(f"http://127.0.0.1:{web_port}/healthz", host=HOST)
        log(f"seeding {INVOICES} organizations with a method and an open invoice …")
        ids = seed(schema)
        assert len(ids) == INVOICES, f"{len(ids)} collection messages for {INVOICES} invoices"

        log(f"baseline: bare create + confirm round-trips from {WORKERS} processes …")
        baseline_per_s = baseline(stripe_port)
        urllib3.request("POST", f"{stripe_base}/reset")
        log(f"  {baseline_per_s:,.0f} pairs/s ({2 * baseline_per_s:,.0f} requests/s)")

        log(f"collections: {len(ids)} outbox messages, {WORKERS} worker processes …")
        cpu = cpu_seconds({"web": web, "responder": responder})
        elapsed, totals = collect(schema, ids, stripe_base)
        cpu = cpu_seconds({"web": web, "responder": responder}) - cpu
        collections_per_s = INVOICES / elapsed
        stats = json.loads(urllib3.request("GET", f"{stripe_base}/stats").data)
        after = ledger(schema)
        log(
            f"  {collections_per_s:,.0f} collections/s ({elapsed:.1f} s); outbox {dict(totals)}; "
            f"{cpu_text(cpu, INVOICES)}"
        )
        log(f"  gateway {stats}; ledger {after}")

        intents = json.loads(urllib3.request("GET", f"{stripe_base}/intents").data)["data"]
        events = signed_events(intents)
        log(
            f"webhooks: {len(events)} signed events, 2 processes x {CONNECTIONS} connections, "
            f"{WEB_WORKERS} web workers …"
        )
        cpu = cpu_seconds({"web": web, "responder": responder})
        answered, elapsed, outcomes, applied = post_webhooks(web_port, events, schema)
        cpu = cpu_seconds({"web": web, "responder": responder}) - cpu
        webhooks_per_s = len(events) / elapsed
        final = ledger(schema)
        stats = json.loads(urllib3.request("GET", f"{stripe_base}/stats").data)
        log(
            f"  {webhooks_per_s:,.0f} webhooks/s verified and applied ({elapsed:.1f} s; all answered after "
            f"{answered:.1f} s: {len(events) / answered:,.0f}/s); outcomes {dict(outcomes)}, {applied} applied by "
            f"{APPLIERS} workers; {cpu_text(cpu, len(events))}"
        )
        log(f"  ledger {final}")
        paid = final["invoices"].get("paid", 0)
        if paid != INVOICES or final["settled"] != INVOICES or final["events"] != len(events):
            log(f"  !! expected {INVOICES} paid invoices, settled payments and {len(events)} stored events")
    finally:
        stop(web)
        stop(responder)
    print(
        json.dumps(
            {
                "collections_per_s": round(collections_per_s, 1),
                "webhooks_per_s": round(webhooks_per_s, 1),
                "double_charges": stats["double_charges"],
                "baseline_per_s": round(baseline_per_s, 1),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
