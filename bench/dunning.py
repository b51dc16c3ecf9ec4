"""Dunning benchmark (`make bench-dunning`): a dunning sweep over past-due invoices whose retries
charge through the real gateway code, against the same run's baseline of the retries alone.

    TEST_DATA_DIR=.data/bench DJANGO_ENV=development \\
        .venv/bin/python -m config.embedded exec -- .venv/bin/python bench/dunning.py

Set-up (not timed): tenant `dunbench` with BENCH_DUNNING_INVOICES (default 10,000) organizations,
each with a default card and one open invoice whose first charge failed (a soft decline) a day
and an hour ago: its dunning case open, its day-0 email sent, the organization past due, as the
hourly run left it. The tenant's Stripe settings point at bench/stripe_responder.py (the
responder of `bench-payments`) under uvicorn on 127.0.0.1; it accepts every charge.

1. Sweep: `dunning_run` (day 1: every invoice's first retry: payment 2 opened under the invoice
   lock with its step and its collection message), then the `payments.collect` messages run by
   BENCH_DUNNING_WORKERS (default 2) processes with the outbox's own `outbox_process` until every
   retry charge is done. sweep_seconds = the run + the charges (wall time); run_seconds alone.
2. Baseline, same run, on the same state seeded again: the retries alone, without dunning (the
   payments service's bulk retry the run calls, `payments_retry_open_bulk`, 200 invoices a
   transaction: no policy, steps, emails or stages), then the same collection. baseline_seconds;
   sweep_seconds - baseline_seconds is what dunning itself adds.
3. Close (reported, not part of the sweep): the next `dunning_run`, which finds every invoice paid,
   closes its case and moves its organization back to active (audit, webhook, recovery email).

BENCH_DUNNING_CHARGES=0 leaves the charges out of both timings (the run against the retries'
loop alone). The last line is JSON: invoices, sweep_seconds, baseline_seconds, run_seconds,
close_seconds, double_charges, charges. The machine's load (`uptime`) is printed with the figures."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parents[1]
# This file's own folder last: `dunning` and `payments` are the apps, not bench/dunning.py and
# bench/payments.py (whose helpers are repeated below for that reason).
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")  # no query log, as in production

from ingest import manage  # noqa: E402
from procs import cpu_seconds, cpu_text, free_port, serve, stop, wait_http  # noqa: E402

SLUG = "dunbench"
INVOICES = int(os.environ.get("BENCH_DUNNING_INVOICES", "10000"))
WORKERS = int(os.environ.get("BENCH_DUNNING_WORKERS", "2"))
# 0: leave the retry charges out of both timings (the run against the retries' loop alone), for
# a quick figure of dunning's own cost when the collection path is what takes the time.
CHARGES = os.environ.get("BENCH_DUNNING_CHARGES", "1") != "0"
# 0: skip the close (the next run's recoveries, one by one: ~80 ms an organization, so minutes at
# 10,000), which is reported but is no part of the sweep.
CLOSE = os.environ.get("BENCH_DUNNING_CLOSE", "1") != "0"
UNIT = "an invoice"
SECRET_KEY = "sk_test_" + "b" * 24
AMOUNT = Decimal("58.31")


def log(message: str) -> None:
    print(message, flush=True)


def seed(schema: str):
    """A clean slate, then the past-due state the hourly run left on day 0. The sweep's instant."""
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from billing.models import Organization, OrganizationStatus
    from dunning.models import DunningAccount, DunningCase, DunningStatus, DunningStep
    from invoicing.models import Invoice, InvoiceStatus
    from payments.models import GatewaySettings, Payment, PaymentCustomer, PaymentStatus

    now = timezone.now()
    failed_at = now - timedelta(days=1, hours=1)
    with schema_context(schema):
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE dunning_dunningstep, dunning_dunningcase, dunning_dunningaccount, "
                "payments_gatewayeventrecord, payments_refund, payments_paymentattempt, payments_payment, "
                "payments_paymentcustomer, core_outboxmessage, invoicing_invoice, billing_organization, "
                "auditlog_logentry CASCADE"
            )
        GatewaySettings.objects.all().delete()
        row = GatewaySettings(stripe_publishable_key="pk_test_bench")
        row.stripe_secret_key_set(SECRET_KEY)
        row.save()
        organizations = Organization.objects.bulk_create(
            [
                Organization(
                    external_id=f"d{n:05d}",
                    name=f"Customer {n}",
                    currency="EUR",
                    country="DE",
                    billing_email=f"ap{n}@customer.example",
                    status=OrganizationStatus.PAST_DUE,
                )
                for n in range(INVOICES)
            ],
            batch_size=2000,
        )
        PaymentCustomer.objects.bulk_create(
            [
                PaymentCustomer(
                    organization=org,
                    gateway_customer_id=f"cus_dun{n:05d}",
                    default_payment_method_id=f"pm_dun{n:05d}",
                    default_method_type="card",
                    default_method_label="visa •••• 4242",
                )
                for n, org in enumerate(organizations)
            ],
            batch_size=2000,
        )
        invoices = Invoice.objects.bulk_create(
            [
                Invoice(
                    organization=org,
                    status=InvoiceStatus.OPEN,
                    number=f"DB-{n:06d}",
                    currency="EUR",
                    subtotal=Decimal("49.00"),
                    tax_total=Decimal("9.31"),
                    total=AMOUNT,
                    amount_due=AMOUNT,
                    issued_at=failed_at,
                    due_at=failed_at,
                )
                for n, org in enumerate(organizations)
            ],
            batch_size=2000,
        )
        Payment.objects.bulk_create(
            [
                Payment(
                    invoice=invoice,
                    organization_id=invoice.organization_id,
                    number=1,
                    idempotency_key=f"inv{invoice.pk}-1",
                    gateway="stripe",
                    gateway_payment_id=f"pi_failed{invoice.pk}",
                    payment_method_id=f"pm_dun{n:05d}",
                    method_type="card",
                    amount=AMOUNT,
                    currency="EUR",
                    status=PaymentStatus.FAILED,
                    failure_code="soft_decline",
                    failure_message="Your card was declined.",
                )
                for n, invoice in enumerate(invoices)
            ],
            batch_size=2000,
        )
        Payment.objects.update(updated_at=failed_at)
        DunningCase.objects.bulk_create(
            [DunningCase(invoice=i, organization_id=i.organization_id, started_at=failed_at) for i in invoices],
            batch_size=2000,
        )
        DunningStep.objects.bulk_create(
            [
                DunningStep(
                    invoice=i,
                    organization_id=i.organization_id,
                    step="email:d0",
                    at=failed_at,
                    email_kind="failed",
                    emailed_at=failed_at,
                    emailed_to=f"ap{n}@customer.example",
                )
                for n, i in enumerate(invoices)
            ],
            batch_size=2000,
        )
        DunningAccount.objects.bulk_create(
            [
                DunningAccount(
                    organization=org,
                    status=DunningStatus.PAST_DUE,
                    since=failed_at,
                    reason=f"payment failed: invoice DB-{n:06d}",
                )
                for n, org in enumerate(organizations)
            ],
            batch_size=2000,
        )
        connection.set_schema_to_public()
    return now


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


def collect(schema: str, api_base: str) -> Counter:
    """Every pending collection message, run by WORKERS processes until done."""
    from django.db import connection, connections
    from django_tenants.utils import schema_context

    from core.models import OutboxMessage, OutboxStatus

    with schema_context(schema):
        ids = list(
            OutboxMessage.objects.filter(kind="payments.collect", status=OutboxStatus.PENDING)
            .order_by("id")
            .values_list("id", flat=True)
        )
        connection.set_schema_to_public()
    connections.close_all()  # the children open their own
    context = mp.get_context("fork")
    out = context.Queue()
    procs = [context.Process(target=_collect, args=(schema, ids[i::WORKERS], api_base, out)) for i in range(WORKERS)]
    for proc in procs:
        proc.start()
    totals: Counter = Counter()
    for _ in procs:
        totals.update(out.get())
    for proc in procs:
        proc.join()
    return totals


def dunning(schema: str, at):
    from django.db import connection
    from django_tenants.utils import schema_context

    from dunning.services.run import dunning_run

    with schema_context(schema):
        result = dunning_run(at=at)
        connection.set_schema_to_public()
    return result


def retries_alone(schema: str) -> int:
    """What the sweep's retries are without dunning's decisions, steps, emails and stages: the
    payments service's bulk retry (`payments_retry_open_bulk`, the call the run makes), 200
    invoices a transaction, the run's chunk."""
    from django.db import connection, transaction
    from django_tenants.utils import schema_context

    from invoicing.models import Invoice
    from payments.services.collection import payments_retry_open_bulk

    opened = 0
    with schema_context(schema):
        ids = list(Invoice.objects.order_by("id").values_list("id", flat=True))
        for start in range(0, len(ids), 200):
            with transaction.atomic():
                opened += len(payments_retry_open_bulk(ids[start : start + 200]))
        connection.set_schema_to_public()
    return opened


def ledger(schema: str) -> dict:
    from django.db import connection
    from django.db.models import Count
    from django_tenants.utils import schema_context

    from dunning.models import DunningAccount
    from invoicing.models import Invoice
    from payments.models import Payment

    with schema_context(schema):
        found = {
            "payments": dict(Payment.objects.values_list("status").annotate(n=Count("id"))),
            "invoices": dict(Invoice.objects.values_list("status").annotate(n=Count("id"))),
            "accounts": dict(DunningAccount.objects.values_list("status").annotate(n=Count("id"))),
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

    tenant = Tenant.objects.filter(slug=SLUG).first() or tenant_create(name="Dunning bench", slug=SLUG).tenant
    schema = tenant.schema_name
    stripe_port = free_port()
    responder = serve("stripe_responder:app", stripe_port, app_dir=str(ROOT / "bench"))
    stripe_base = f"http://127.0.0.1:{stripe_port}"
    try:
        wait_http(f"{stripe_base}/stats")
        log(f"seeding {INVOICES} past-due invoices (first charge failed a day ago) …")
        at = seed(schema)
        log(f"sweep: dunning_run on day 1, then the retry charges by {WORKERS} worker processes …")
        cpu = cpu_seconds({"responder": responder}, own=True)
        started = time.perf_counter()
        result = dunning(schema, at)
        run_seconds = time.perf_counter() - started
        run_cpu = cpu_seconds({"responder": responder}, own=True) - cpu
        totals = collect(schema, stripe_base) if CHARGES else Counter()
        sweep_seconds = time.perf_counter() - started
        sweep_cpu = cpu_seconds({"responder": responder}, own=True) - cpu
        stats = json.loads(urllib3.request("GET", f"{stripe_base}/stats").data)
        after = ledger(schema)
        log(f"  run {run_seconds:.1f} s ({result.retries} retries, {result.emails} emails, {result.stages} stages)")
        log(f"  sweep {sweep_seconds:.1f} s; outbox {dict(totals)}; gateway {stats}; ledger {after}")
        log(f"  run {cpu_text(run_cpu, INVOICES, UNIT)}; sweep {cpu_text(sweep_cpu, INVOICES, UNIT)}")
        if result.retries != INVOICES or (CHARGES and after["payments"].get("succeeded", 0) != INVOICES):
            log(f"  !! expected {INVOICES} retries and as many succeeded payments")
        close_seconds = None
        if CLOSE:
            started = time.perf_counter()
            closing = dunning(schema, at + timedelta(minutes=5))
            close_seconds = round(time.perf_counter() - started, 2)
            log(f"  close: {close_seconds:.1f} s ({closing.cases_closed} cases closed); ledger {ledger(schema)}")
        double_charges = stats["double_charges"]

        log("baseline: the same state seeded again, the retries alone, then the same collection …")
        urllib3.request("POST", f"{stripe_base}/reset")
        seed(schema)
        cpu = cpu_seconds({"responder": responder}, own=True)
        started = time.perf_counter()
        opened = retries_alone(schema)
        loop_seconds = time.perf_counter() - started
        loop_cpu = cpu_seconds({"responder": responder}, own=True) - cpu
        totals = collect(schema, stripe_base) if CHARGES else Counter()
        baseline_seconds = time.perf_counter() - started
        baseline_cpu = cpu_seconds({"responder": responder}, own=True) - cpu
        log(f"  retries opened {opened} in {loop_seconds:.1f} s; with the charges {baseline_seconds:.1f} s")
        log(f"  loop {cpu_text(loop_cpu, INVOICES, UNIT)}; baseline {cpu_text(baseline_cpu, INVOICES, UNIT)}")
        log(f"  outbox {dict(totals)}; ledger {ledger(schema)}")
    finally:
        stop(responder)
    log("uptime: " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(
        json.dumps(
            {
                "invoices": INVOICES,
                "sweep_seconds": round(sweep_seconds, 2),
                "baseline_seconds": round(baseline_seconds, 2),
                "run_seconds": round(run_seconds, 2),
                "sweep_cpu_ms_per_invoice": round(1000 * sum(sweep_cpu.values()) / INVOICES, 2),
                "baseline_cpu_ms_per_invoice": round(1000 * sum(baseline_cpu.values()) / INVOICES, 2),
                "close_seconds": close_seconds,
                "double_charges": double_charges,
                "charges": CHARGES,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
