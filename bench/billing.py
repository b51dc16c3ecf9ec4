"""Month-end billing benchmark (`make bench-billing`): 10,000 organizations billed at the end of a
month to drafts, the drafts finalized, and the PDF rate per core.

    TEST_DATA_DIR=.data/bench DJANGO_ENV=development \\
        .venv/bin/python -m config.embedded exec -- .venv/bin/python bench/billing.py

Seeding (tenant `billingbench`, once; reused while its marker matches, see `_marker`):

- the seller in DE, VAT-registered at home and for OSS, grace period 24 hours;
- three meters on one event type `api_request`: `api_calls` (count), `data_mb` (sum of `mb`),
  `compute_s` (sum of `cpu_s`), made by metering.services.meter.meter_create;
- one plan per currency (EUR, USD, GBP) by billing.services.plan.plan_create: a base fee in
  advance and three charges, graduated on api_calls, volume on data_mb, package on compute_s;
- 10,000 organizations (bulk-created): 70 % DE (19 % VAT), 10 % FR with a VAT number (reverse
  charge), 5 % AT without one (AT VAT through OSS), 10 % US/NY in USD (outside the scope of EU
  VAT), 5 % GB in GBP (reverse charge); each in its country's timezone;
- one calendar-billed subscription each, started at the beginning of the seeded month (the last
  closed calendar month when first seeded) in the organization's timezone. The first of each
  kind is made by billing.services.subscription.subscription_create, the rest bulk-created as the
  same rows (Subscription + one open SubscriptionPhase, next_bill_at = start), checked
  field by field against the service's;
- usage: the hourly rollups of BENCH_BILLING_EVENTS (default 10M) `api_request` events, built in
  SQL from events generated with generate_series (skewed: the busiest organization has ~1 % of
  the events, the quietest ~0.005 %; spread over the hours the month has in every timezone),
  written straight into metering_rollup. NOT through the ingestion path: `make bench-ingest`
  measures that path (~45k events/s stored and rolled up, so 10M events would take ~4 minutes
  and ~2.8 GB of raw events), and the billing run reads count and sum usage from rollups only.

Each run resets the invoices, the number sequence and the subscriptions' watermarks, bills the
start-of-month bill point and finalizes it (not timed), then measures:

1. drafts: `billing_run(at=<month end>)` (the latest month end of the timezones): 10,000 drafts,
   nothing finalized (the grace period runs 24 hours);
2. finalization: `invoices_finalize_due(at=<month end + 24 h>)`: re-composed with fresh usage,
   numbered, snapshotted, credit checked; the `invoice.deliver` outbox rows (and webhook events,
   none without endpoints) it writes and the dispatch tasks it enqueues on commit (50 invoices a
   task) are part of it (the tasks are purged from the bench's Redis afterwards: no worker runs);
3. PDFs: invoicing.pdf_render.invoice_pdf_render of BENCH_BILLING_PDFS (default 200; 0 skips
   them) finalized invoices in one process (after two untimed warm-up renders), then as many in
   each of two forked processes at once.

Baselines in the same run, rolled back: the writes the draft run makes, with no logic at all, for
the same 10,000 invoices, their lines and the subscriptions' watermark fields in chunks of 500,
three ways (the ORM's bulk_create / bulk_update; the run's own writers, bulk_create / rows_update; COPY of
the invoice and line rows, the floor); the fields finalization writes on the same invoices (ORM
bulk_update, and rows_update); the time finalization spends enqueueing the outbox dispatch tasks
(measured around core.services.outbox.outbox_dispatch_enqueue); and WeasyPrint rendering a one-line
HTML page.

Revenue recognition (invoicing.services.revenue.revenue_schedule_build, part of finalization) is
timed and its rows counted (revrec_seconds, revrec_rows); BENCH_BILLING_REVREC=0 replaces it with a
no-op for the figure without it.

Query logging is off (DEBUG=false) as in production. BENCH_BILLING_PROFILE=<dir> writes cProfile
files of the two timed calls. The last line is JSON: orgs, invoices (month-end invoices
finalized), draft_seconds, finalize_seconds, invoices_per_s (month-end invoices drafted and
finalized per second: invoices / (draft_seconds + finalize_seconds)), pdf_per_s (per core: the
lower of the one-process rate and the two-process rate divided by two), and more.
"""

from __future__ import annotations

import cProfile
import json
import logging
import multiprocessing as mp
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")  # no query log, as in production

from ingest import manage  # noqa: E402

SLUG = "billingbench"
ORGS = int(os.environ.get("BENCH_BILLING_ORGS", "10000"))
EVENTS = int(os.environ.get("BENCH_BILLING_EVENTS", "10000000"))
PDFS = int(os.environ.get("BENCH_BILLING_PDFS", "200"))
PROFILE_DIR = os.environ.get("BENCH_BILLING_PROFILE", "")
# 0: finalization writes no revenue recognition rows (the bench's figure without recognition, to
# measure what the schedule costs; production always writes it).
REVREC = os.environ.get("BENCH_BILLING_REVREC", "1") != "0"
GRACE_HOURS = 24
CHUNK = 500  # the billing run's default chunk, used by the baselines too


@dataclass(frozen=True)
class Profile:
    share: int  # organizations per 100
    country: str
    currency: str
    timezone: str
    region: str = ""
    tax_id: str = ""


PROFILES = (
    Profile(70, "DE", "EUR", "Europe/Berlin"),
    Profile(10, "FR", "EUR", "Europe/Paris", tax_id="FR40303265045"),
    Profile(5, "AT", "EUR", "Europe/Vienna"),
    Profile(10, "US", "USD", "America/New_York", region="NY"),
    Profile(5, "GB", "GBP", "Europe/London"),
)
BASE_FEES = {"EUR": "49.00", "USD": "59.00", "GBP": "45.00"}
PRICES = {
    "api_calls": {
        "model": "graduated",
        "tiers": [
            {"up_to": "500", "unit_amount": "0", "flat_amount": "0"},
            {"up_to": "5000", "unit_amount": "0.004", "flat_amount": "0"},
            {"up_to": None, "unit_amount": "0.002", "flat_amount": "0"},
        ],
    },
    "data_mb": {
        "model": "volume",
        "tiers": [
            {"up_to": "50000", "unit_amount": "0.0002", "flat_amount": "0"},
            {"up_to": "500000", "unit_amount": "0.00015", "flat_amount": "5"},
            {"up_to": None, "unit_amount": "0.0001", "flat_amount": "25"},
        ],
    },
    "compute_s": {"model": "package", "package_size": "3600", "package_amount": "0.90", "free_units": "3600"},
}


def log(message: str) -> None:
    print(message, flush=True)


def profile_of(index: int) -> Profile:
    slot = index % 100
    for profile in PROFILES:
        if slot < profile.share:
            return profile
        slot -= profile.share
    raise AssertionError("shares add up to 100")


def external_id(index: int) -> str:
    return f"org-{index:05d}"


def _marker(month: datetime) -> str:
    return f"billing bench: {month:%Y-%m}, {ORGS} organizations, {EVENTS} events"


def _last_closed_month() -> datetime:
    now = datetime.now(UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first - timedelta(days=1)).replace(day=1)


def month_bounds(month: datetime) -> dict[str, tuple[datetime, datetime]]:
    """Per timezone: the calendar month [start, end) in UTC."""
    from billing.periods import calendar_period_containing

    middle = month.replace(day=15)
    return {
        p.timezone: calendar_period_containing(instant=middle, timezone=p.timezone, interval="month") for p in PROFILES
    }


@contextmanager
def profiled(name: str):
    if not PROFILE_DIR:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        Path(PROFILE_DIR).mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(Path(PROFILE_DIR) / f"{name}.prof"))


@contextmanager
def enqueue_timed():
    """Time spent enqueueing outbox dispatch tasks (what finalization enqueues on commit)."""
    from core.services import outbox

    spent = {"seconds": 0.0, "tasks": 0}
    original = outbox.outbox_dispatch_enqueue

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent["seconds"] += time.perf_counter() - started
            spent["tasks"] += 1

    with mock.patch.object(outbox, "outbox_dispatch_enqueue", timed):
        yield spent


@contextmanager
def recognition_timed():
    """Time and rows of invoicing.services.revenue.revenue_schedule_build inside finalization, or
    a no-op in its place with BENCH_BILLING_REVREC=0."""
    from invoicing.services import finalize

    spent = {"seconds": 0.0, "rows": 0}
    original = finalize.revenue_schedule_build

    def timed(invoices):
        if not REVREC:
            return 0
        started = time.perf_counter()
        rows = original(invoices)
        spent["seconds"] += time.perf_counter() - started
        spent["rows"] += rows
        return rows

    with mock.patch.object(finalize, "revenue_schedule_build", timed):
        yield spent


# --- seeding ---------------------------------------------------------------------------------


def _wipe(cursor) -> None:
    from billing.models import Organization, Plan
    from invoicing.models import Invoice, InvoiceLine, NumberSequence
    from metering.models import Meter, Rollup

    tables = [m._meta.db_table for m in (InvoiceLine, Invoice, NumberSequence, Organization, Plan, Meter, Rollup)]
    # CASCADE: lines, versions, charges, subscriptions, phases, credit entries of this tenant only.
    cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def _subscription_rows(organization, version, start, end):
    from billing.models import BillingMode, Subscription, SubscriptionPhase, SubscriptionStatus

    subscription = Subscription(
        organization=organization,
        plan_version=version,
        status=SubscriptionStatus.ACTIVE,
        billing_mode=BillingMode.CALENDAR,
        billing_anchor=start,
        started_at=start,
        current_period_start=start,
        current_period_end=end,
        trial_end=None,
        next_bill_at=start,
    )
    return subscription, SubscriptionPhase(subscription=subscription, plan_version=version, starts_at=start)


_COMPARED_SUBSCRIPTION = (
    "plan_version_id",
    "status",
    "billing_mode",
    "billing_anchor",
    "started_at",
    "current_period_start",
    "current_period_end",
    "trial_end",
    "cancel_at_period_end",
    "canceled_at",
    "ended_at",
    "billed_through",
    "next_bill_at",
)


def seed(tenant, month: datetime) -> None:
    from django.db import connection, transaction

    from billing.models import Organization, Plan, PlanVersion, Subscription, SubscriptionPhase
    from billing.services.plan import ChargeInput, VersionInput, plan_create
    from billing.services.subscription import subscription_create
    from invoicing.models import InvoicingSettings
    from metering.models import Meter
    from metering.services.meter import meter_create
    from metering.services.partitions import partitions_maintain

    bounds = month_bounds(month)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        _wipe(cursor)
    InvoicingSettings.objects.update_or_create(
        pk=1,
        defaults={
            "seller_name": "Bench Cloud GmbH",
            "seller_country": "DE",
            "seller_tax_id": "DE136695976",
            "tax_registrations": ["DE", "EU-OSS"],
            "grace_hours": GRACE_HOURS,
        },
    )
    # The rollups are written below; the backfill (a rebuild from raw events, of which there are
    # none) that meter_create enqueues would wipe them if a worker ever ran it.
    with mock.patch("metering.services.meter._backfill_on_commit"):
        common = {"actor": None, "event_type": "api_request"}
        meter_create(**common, code="api_calls", name="API calls", aggregation="count")
        meter_create(**common, code="data_mb", name="Data transfer (MB)", aggregation="sum", value_property="mb")
        meter_create(**common, code="compute_s", name="Compute (s)", aggregation="sum", value_property="cpu_s")
    versions = {}
    for currency, fee in BASE_FEES.items():
        plan = plan_create(
            actor=None,
            code=f"pro-{currency.lower()}",
            name="Pro",
            currency=currency,
            interval="month",
            description=_marker(month) if currency == "EUR" else "",
            version=VersionInput(
                base_fee=fee,
                charges=[
                    ChargeInput(meter="api_calls", price=PRICES["api_calls"]),
                    ChargeInput(meter="data_mb", price=PRICES["data_mb"]),
                    ChargeInput(meter="compute_s", price=PRICES["compute_s"]),
                ],
            ),
        )
        versions[currency] = PlanVersion.objects.select_related("plan").get(plan=plan)
    organizations = []
    for i in range(ORGS):
        p = profile_of(i)
        organizations.append(
            Organization(
                external_id=external_id(i),
                name=f"Customer {i:05d} {p.country}",
                billing_email=f"billing@customer{i:05d}.example",
                currency=p.currency,
                timezone=p.timezone,
                country=p.country,
                region=p.region,
                address_line1=f"{1 + i % 200} Example Street",
                city="Example City",
                postal_code=f"{10000 + i % 89999}",
                tax_id=p.tax_id,
            )
        )
    Organization.objects.bulk_create(organizations, batch_size=2000)
    log(f"  organizations, meters and plans in {time.perf_counter() - started:.0f}s")

    # The first organization of each kind through the service; the rest the same rows in bulk.
    started = time.perf_counter()
    by_service: dict[str, Subscription] = {}
    subscriptions, phases = [], []
    for organization in organizations:
        p = profile_of(int(organization.external_id[4:]))
        start, end = bounds[p.timezone]
        version = versions[p.currency]
        if p.timezone not in by_service:
            made = subscription_create(actor=None, organization=organization, plan_version=version, start_at=start)
            by_service[p.timezone] = made
            expected, _ = _subscription_rows(organization, version, start, end)
            for name in _COMPARED_SUBSCRIPTION:
                assert getattr(made, name) == getattr(expected, name), (name, getattr(made, name))
            [phase] = made.phases.all()
            assert (phase.plan_version_id, phase.starts_at, phase.ends_at) == (version.pk, start, None)
            continue
        subscription, phase = _subscription_rows(organization, version, start, end)
        subscriptions.append(subscription)
        phases.append(phase)
    with transaction.atomic():
        Subscription.objects.bulk_create(subscriptions, batch_size=2000)
        for phase in phases:
            phase.subscription_id = phase.subscription.pk
        SubscriptionPhase.objects.bulk_create(phases, batch_size=2000)
    log(f"  {Subscription.objects.count():,} subscriptions in {time.perf_counter() - started:.0f}s")

    # Usage: events generated in SQL and aggregated by (customer, hour), then one rollup row per
    # meter, customer and hour, as the drainer would have written them.
    started = time.perf_counter()
    first_hour = max(start for start, _ in bounds.values())
    last_hour = min(end for _, end in bounds.values())
    hours = int((last_hour - first_hour).total_seconds() // 3600)
    meters = {m.code: m.pk for m in Meter.objects.all()}
    connection.tenant = tenant
    partitions_maintain()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(
            "CREATE TEMP TABLE bench_usage ON COMMIT DROP AS "
            "SELECT customer, hour, count(*) AS n, sum(mb) AS mb_sum, min(mb) AS mb_min, max(mb) AS mb_max, "
            "sum(cpu) AS cpu_sum, min(cpu) AS cpu_min, max(cpu) AS cpu_max FROM ("
            "  SELECT 'org-' || lpad(least(%s - 1, floor(%s * power(((g * 2654435761) %% 4294967296)::float8 "
            "           / 4294967296.0, 2)))::int::text, 5, '0') AS customer,"
            "         %s::timestamptz + make_interval(hours => ((g * 40503) %% %s)::int) AS hour,"
            "         (1 + (g * 31) %% 100)::numeric AS mb, (1 + (g * 17) %% 60)::numeric AS cpu"
            "  FROM generate_series(1::bigint, %s::bigint) AS g"
            ") e GROUP BY customer, hour",
            [ORGS, ORGS, first_hour, hours, EVENTS],
        )
        insert = (
            "INSERT INTO metering_rollup (meter_id, customer, hour, group_key, event_count, value_sum, "
            "value_min, value_max) SELECT %s, customer, hour, '', n, {} FROM bench_usage ORDER BY customer, hour"
        )
        cursor.execute(insert.format("NULL::numeric, NULL::numeric, NULL::numeric"), [meters["api_calls"]])
        rows = cursor.rowcount
        cursor.execute(insert.format("mb_sum, mb_min, mb_max"), [meters["data_mb"]])
        cursor.execute(insert.format("cpu_sum, cpu_min, cpu_max"), [meters["compute_s"]])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE metering_rollup")
        for model in (Organization, Subscription, SubscriptionPhase, Plan):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    log(
        f"  {3 * rows:,} rollup rows ({rows:,} per meter) for {EVENTS:,} events over {hours} hours "
        f"in {time.perf_counter() - started:.0f}s"
    )


def seeded_month(tenant) -> datetime:
    """The seeded month, seeding (again) when the tenant does not hold what this run asks for."""
    from django.db import connection

    from billing.models import Organization, Plan, Subscription
    from metering.models import Meter

    plan = Plan.objects.filter(code="pro-eur").first()
    if plan is not None and Organization.objects.count() == ORGS and Subscription.objects.count() == ORGS:
        month = datetime.strptime(plan.description.split(": ")[1].split(",")[0], "%Y-%m").replace(tzinfo=UTC)
        with connection.cursor() as cursor:
            meter = Meter.objects.get(code="api_calls")
            cursor.execute("SELECT coalesce(sum(event_count), 0) FROM metering_rollup WHERE meter_id = %s", [meter.pk])
            if plan.description == _marker(month) and cursor.fetchone()[0] == EVENTS:
                log(f"reusing the seeded tenant ({ORGS:,} organizations, {EVENTS:,} events in {month:%Y-%m})")
                return month
    month = _last_closed_month()
    log(f"seeding {ORGS:,} organizations and {EVENTS:,} events' rollups for {month:%Y-%m} …")
    seed(tenant, month)
    return month


def reset(bounds: dict[str, tuple[datetime, datetime]]) -> None:
    """No invoices, numbers from 1, every subscription back at its start (as seeded)."""
    from django.db import connection

    from billing.models import Organization, Subscription
    from core.models import OutboxMessage
    from invoicing.models import Invoice, InvoiceLine, NumberSequence

    with connection.cursor() as cursor:
        tables = [m._meta.db_table for m in (InvoiceLine, Invoice, NumberSequence, OutboxMessage)]
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
    for tz, (start, end) in bounds.items():
        Subscription.objects.filter(organization__in=Organization.objects.filter(timezone=tz)).update(
            billed_through=None, next_bill_at=start, current_period_start=start, current_period_end=end, status="active"
        )
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Subscription._meta.db_table}")


# --- baselines -------------------------------------------------------------------------------


class _Rollback(Exception):
    pass


def baseline_writes(point_of: dict[int, datetime]) -> dict[str, float]:
    """Seconds to write the month-end invoices, their lines and the subscriptions' watermarks
    with no logic: the same rows copied (bill point + 1 s), in chunks of 500 subscriptions, rolled
    back; per kind of row, with the ORM (bulk_create / bulk_update), with the run's own writers
    (bulk_create and core.db.rows_update), and as COPY."""
    from django.db import connection, transaction

    from billing.models import Subscription
    from billing.services.subscription import BILL_POINT_FIELDS
    from core.db import rows_update
    from invoicing.models import Invoice, InvoiceLine

    def copies() -> list[tuple[Invoice, list[InvoiceLine]]]:
        invoices = list(Invoice.objects.filter(bill_point__in=set(point_of.values())).order_by("subscription_id"))
        lines: dict[int, list[InvoiceLine]] = {}
        for line in InvoiceLine.objects.filter(invoice__in=invoices).order_by("invoice_id", "position"):
            lines.setdefault(line.invoice_id, []).append(line)
        out = []
        for invoice in invoices:
            copy_lines = lines[invoice.pk]
            invoice.pk = None
            invoice._state.adding = True
            invoice.bill_point += timedelta(seconds=1)
            # a draft has no number and no bank-transfer reference (unique, given at finalization)
            invoice.status, invoice.number, invoice.payment_reference = "draft", None, None
            for line in copy_lines:
                line.pk, line.discounts_id, line.corrects_id = None, None, None
                line._state.adding = True
            out.append((invoice, copy_lines))
        return out

    subscriptions = {s.pk: s for s in Subscription.objects.filter(pk__in=list(point_of))}
    writers = {
        "orm": (
            lambda objs: Invoice.objects.bulk_create(objs),
            lambda objs: InvoiceLine.objects.bulk_create(objs),
            lambda objs: Subscription.objects.bulk_update(objs, BILL_POINT_FIELDS),
        ),
        "run": (
            lambda objs: Invoice.objects.bulk_create(objs),
            lambda objs: InvoiceLine.objects.bulk_create(objs),
            lambda objs: rows_update(Subscription, objs, BILL_POINT_FIELDS),
        ),
    }
    out: dict[str, float] = {}
    for name, (write_invoices, write_lines, write_subscriptions) in writers.items():
        rows_of = copies()
        times = {"invoices": 0.0, "lines": 0.0, "subscriptions": 0.0}
        try:
            with transaction.atomic():
                for offset in range(0, len(rows_of), CHUNK):
                    chunk = rows_of[offset : offset + CHUNK]
                    with transaction.atomic():
                        started = time.perf_counter()
                        write_invoices([invoice for invoice, _ in chunk])
                        times["invoices"] += time.perf_counter() - started
                        rows = []
                        for invoice, copy_lines in chunk:
                            for line in copy_lines:
                                line.invoice = invoice
                                rows.append(line)
                        started = time.perf_counter()
                        write_lines(rows)
                        times["lines"] += time.perf_counter() - started
                        started = time.perf_counter()
                        write_subscriptions([subscriptions[invoice.subscription_id] for invoice, _ in chunk])
                        times["subscriptions"] += time.perf_counter() - started
                raise _Rollback
        except _Rollback:
            pass
        out |= {f"{name}_{kind}": seconds for kind, seconds in times.items()}
        out[f"{name}_total"] = sum(times.values())
    # The floor: COPY of the same invoice and line rows (generated in SQL from the stored ones).
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            inv, line = Invoice._meta.db_table, InvoiceLine._meta.db_table
            cursor.execute(f"SELECT * FROM {inv} WHERE bill_point = ANY(%s) LIMIT 0", [list(set(point_of.values()))])
            inv_columns = [f'"{c.name}"' for c in cursor.description if c.name != "id"]
            cursor.execute(f"SELECT * FROM {line} LIMIT 0")
            line_columns = [f'"{c.name}"' for c in cursor.description if c.name not in ("id", "invoice_id")]
            changed = {
                '"bill_point"': "bill_point + interval '2 seconds' AS bill_point",
                '"number"': "NULL::varchar AS number",
                '"status"': "'draft'::varchar AS status",
                '"payment_reference"': "NULL::varchar AS payment_reference",
            }
            cursor.execute(f"SELECT max(id) FROM {inv}")
            top = cursor.fetchone()[0]
            cursor.execute(
                f"CREATE TEMP TABLE bench_inv ON COMMIT DROP AS SELECT id + %s AS id, "
                f"{', '.join(changed.get(c, c) for c in inv_columns)} FROM {inv} WHERE bill_point = ANY(%s)",
                [top, list(set(point_of.values()))],
            )
            cursor.execute(
                f"CREATE TEMP TABLE bench_line ON COMMIT DROP AS SELECT l.invoice_id + %s AS invoice_id, "
                f"{', '.join('l.' + c for c in line_columns)} "
                f"FROM {line} l JOIN bench_inv i ON i.id = l.invoice_id + %s",
                [top, top],
            )
            inv_data = cursor.connection.cursor()
            with inv_data.copy("COPY bench_inv TO STDOUT") as copy:
                inv_rows = b"".join(bytes(b) for b in copy)
            with inv_data.copy("COPY bench_line TO STDOUT") as copy:
                line_rows = b"".join(bytes(b) for b in copy)
            started = time.perf_counter()
            with inv_data.copy(f"COPY {inv} (id, {', '.join(inv_columns)}) FROM STDIN") as copy:
                copy.write(inv_rows)
            with inv_data.copy(f"COPY {line} (invoice_id, {', '.join(line_columns)}) FROM STDIN") as copy:
                copy.write(line_rows)
            out["copy"] = time.perf_counter() - started
            raise _Rollback
    except _Rollback:
        pass
    return out


def baseline_finalize_update(point_of: dict[int, datetime]) -> dict[str, float]:
    """Seconds to write what finalization changes on the month-end invoices with no logic, in
    chunks of 500, rolled back: ORM bulk_update, and the run's rows_update."""
    from django.db import transaction

    from core.db import rows_update
    from invoicing.models import Invoice

    fields = ["number", "status", "issued_at", "due_at", "paid_at", "seller", "customer", "currency"]
    fields += ["period_start", "period_end", "subtotal", "tax_total", "total", "credits_applied", "amount_due"]
    fields += ["tax_problem", "updated_at"]
    invoices = list(Invoice.objects.filter(bill_point__in=set(point_of.values())).order_by("subscription_id"))
    out = {}
    for name, write in (
        ("orm", lambda objs: Invoice.objects.bulk_update(objs, fields)),
        ("run", lambda objs: rows_update(Invoice, objs, fields)),
    ):
        try:
            with transaction.atomic():
                started = time.perf_counter()
                for offset in range(0, len(invoices), CHUNK):
                    with transaction.atomic():
                        write(invoices[offset : offset + CHUNK])
                out[name] = time.perf_counter() - started
                raise _Rollback
        except _Rollback:
            pass
    return out


# --- PDFs ------------------------------------------------------------------------------------


def _renderer():
    """invoicing.pdf_render.invoice_pdf_render, or a stand-in (say so) while it does not exist."""
    try:
        from invoicing.pdf_render import invoice_pdf_render
    except ImportError:
        return _standin_render, True
    return invoice_pdf_render, False


_STANDIN_HTML = """<html><head><style>body{font-family:sans-serif;font-size:10pt}
table{width:100%;border-collapse:collapse}td,th{border-bottom:1px solid #ccc;padding:4px}
.r{text-align:right}</style></head><body><h1>Invoice {{ i.number }}</h1>
<p>{{ i.seller.name }}<br>{{ i.seller.address }}</p><p>Bill to: {{ i.customer.name }}<br>
{{ i.customer.address_line1 }}, {{ i.customer.postal_code }} {{ i.customer.city }}, {{ i.customer.country }}
{% if i.customer.tax_id %}<br>VAT {{ i.customer.tax_id }}{% endif %}</p>
<p>Issued {{ i.issued_at|date:"Y-m-d" }}, due {{ i.due_at|date:"Y-m-d" }}</p>
<table><tr><th>Description</th><th>Period</th><th class="r">Quantity</th><th class="r">Tax</th>
<th class="r">Amount</th></tr>{% for l in lines %}<tr><td>{{ l.description }}</td>
<td>{{ l.period_start|date:"Y-m-d" }} to {{ l.period_end|date:"Y-m-d" }}</td>
<td class="r">{{ l.quantity|default_if_none:"" }}</td><td class="r">{{ l.tax_rate|default_if_none:"" }} %</td>
<td class="r">{{ l.amount }} {{ l.currency }}</td></tr>{% endfor %}</table>
<p class="r">Subtotal {{ i.subtotal }}<br>Tax {{ i.tax_total }}<br><b>Total {{ i.total }} {{ i.currency }}</b></p>
{% for l in lines %}{% if l.tax_reason %}<p>{{ l.tax_reason }}</p>{% endif %}{% endfor %}</body></html>"""


def _standin_render(*, invoice) -> bytes:
    from django.template import Context, Template
    from weasyprint import HTML

    html = Template(_STANDIN_HTML).render(Context({"i": invoice, "lines": list(invoice.lines.all())}))
    return HTML(string=html).write_pdf()


def _render_many(schema: str, invoice_ids: list[int], warmup: int = 2) -> tuple[float, int]:
    """Seconds to render the invoices (after `warmup` untimed renders) and the bytes made."""
    from django_tenants.utils import schema_context

    from invoicing.models import Invoice

    render, _ = _renderer()
    with schema_context(schema):
        for invoice_id in invoice_ids[:warmup]:
            render(invoice=Invoice.objects.select_related("organization", "subscription").get(pk=invoice_id))
        size = 0
        started = time.perf_counter()
        for invoice_id in invoice_ids:
            invoice = Invoice.objects.select_related("organization", "subscription").get(pk=invoice_id)
            pdf = render(invoice=invoice)
            assert pdf[:4] == b"%PDF"
            size += len(pdf)
        return time.perf_counter() - started, size


def _child(args) -> tuple[float, int]:
    schema, invoice_ids, barrier = args  # forked: Django is set up, the parent closed its connections
    from django_tenants.utils import schema_context

    from invoicing.models import Invoice

    render, _ = _renderer()
    with schema_context(schema):
        render(invoice=Invoice.objects.select_related("organization", "subscription").get(pk=invoice_ids[0]))
    barrier.wait()
    return _render_many(schema, invoice_ids, warmup=0)


def _child_main(schema, invoice_ids, barrier, queue) -> None:
    queue.put(_child((schema, invoice_ids, barrier)))


def pdf_rates(schema: str, invoice_ids: list[int]) -> dict[str, float]:
    from django.db import connections
    from weasyprint import HTML

    logging.getLogger("weasyprint").setLevel(logging.WARNING)  # a progress line per step otherwise
    out: dict[str, float] = {}
    # Baseline: WeasyPrint and a one-line page.
    HTML(string="<p>Invoice</p>").write_pdf()
    started = time.perf_counter()
    for _ in range(50):
        HTML(string="<p>Invoice INV-000001: 1 line, 10.00 EUR</p>").write_pdf()
    out["baseline_trivial_pdf_per_s"] = 50 / (time.perf_counter() - started)

    seconds, size = _render_many(schema, invoice_ids[:PDFS])
    out["pdf_one_process_per_s"] = PDFS / seconds
    out["pdf_bytes_avg"] = size / PDFS

    connections.close_all()
    context = mp.get_context("fork")
    barrier = context.Barrier(2)
    queue = context.Queue()
    halves = [invoice_ids[:PDFS], invoice_ids[PDFS : 2 * PDFS]]
    procs = [context.Process(target=_child_main, args=(schema, ids, barrier, queue)) for ids in halves]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    wall = max(seconds for seconds, _ in results)
    out["pdf_two_processes_per_s"] = 2 * PDFS / wall
    out["pdf_two_processes_per_core_per_s"] = PDFS / wall
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- the run ---------------------------------------------------------------------------------


def main() -> None:
    log("migrating …")
    manage("platform_migrate", "-v", "0")
    import django

    django.setup()
    from django.db import connection
    from django_tenants.utils import schema_context

    from billing.models import Subscription
    from invoicing.models import Invoice, InvoiceLine
    from invoicing.services.billing_run import billing_run
    from invoicing.services.finalize import invoices_finalize_due
    from tenants.models import Tenant
    from tenants.services.tenant_provision import tenant_create

    tenant = Tenant.objects.filter(slug=SLUG).first() or tenant_create(name="Billing bench", slug=SLUG).tenant
    results: dict[str, float] = {}
    with schema_context(tenant.schema_name):
        connection.tenant = tenant
        month = seeded_month(tenant)
        bounds = month_bounds(month)
        start_at = max(start for start, _ in bounds.values())
        end_at = max(end for _, end in bounds.values())
        grace = timedelta(hours=GRACE_HOURS)
        reset(bounds)

        log(f"start of {month:%Y-%m}: billing and finalizing the first bill point (not timed) …")
        started = time.perf_counter()
        first = billing_run(at=start_at)
        drafted = time.perf_counter() - started
        assert (first.invoices_created, first.finalized) == (ORGS, 0), first
        started = time.perf_counter()
        done = invoices_finalize_due(at=start_at + grace)
        assert (done.finalized, done.held) == (ORGS, 0), done
        log(f"  {ORGS:,} drafts in {drafted:.1f}s, finalized in {time.perf_counter() - started:.1f}s")
        with connection.cursor() as cursor:
            for model in (Invoice, InvoiceLine, Subscription):
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")

        log(f"month end ({end_at:%Y-%m-%d %H:%M} UTC, the latest of {len(bounds)} timezones): drafts …")
        with profiled("drafts"):
            started = time.perf_counter()
            run = billing_run(at=end_at)
            draft_seconds = time.perf_counter() - started
        assert (run.invoices_created, run.finalized, run.subscriptions) == (ORGS, 0, ORGS), run
        assert Invoice.objects.filter(status="draft").count() == ORGS
        log(f"  {run.invoices_created:,} drafts in {draft_seconds:.2f}s ({ORGS / draft_seconds:,.0f}/s)")

        log(f"finalizing at month end + {GRACE_HOURS} h …")
        with profiled("finalize"), enqueue_timed() as enqueue, recognition_timed() as recognition:
            started = time.perf_counter()
            final = invoices_finalize_due(at=end_at + grace)
            finalize_seconds = time.perf_counter() - started
        assert (final.finalized, final.held) == (ORGS, 0), final
        log(f"  {final.finalized:,} finalized in {finalize_seconds:.2f}s ({ORGS / finalize_seconds:,.0f}/s)")
        log(
            f"  revenue recognition: {recognition['rows']:,} rows in {recognition['seconds']:.2f}s"
            if REVREC
            else "  revenue recognition off (BENCH_BILLING_REVREC=0)"
        )
        from config.celery import app

        purged = app.control.purge()  # the outbox dispatch tasks: no worker runs in the bench
        log(f"  ({purged:,} queued deliver tasks purged)")

        # What was billed adds up to what was seeded.
        month_end = Invoice.objects.filter(bill_point__gt=start_at)
        calls = InvoiceLine.objects.filter(invoice__in=month_end, meter_code="api_calls")
        billed_events = sum(q for q in calls.values_list("quantity", flat=True))
        assert billed_events == EVENTS, billed_events
        line_count = InvoiceLine.objects.filter(invoice__in=month_end).count()
        totals = {
            currency: sum(month_end.filter(currency=currency).values_list("total", flat=True), Decimal(0))
            for currency in ("EUR", "USD", "GBP")
        }
        taxed = InvoiceLine.objects.filter(invoice__in=month_end, tax_amount__gt=0).count()
        log(
            f"  {line_count:,} lines ({taxed:,} taxed), {int(billed_events):,} API calls billed; totals "
            + ", ".join(f"{v:,.2f} {k}" for k, v in totals.items())
        )

        log("baselines …")
        point_of = dict(month_end.values_list("subscription_id", "bill_point"))
        writes = baseline_writes(point_of)
        update = baseline_finalize_update(point_of)
        log(
            f"  drafts: {draft_seconds:.2f}s; the same rows written with no logic [ORM bulk_create/bulk_update: "
            f"{writes['orm_total']:.2f}s (invoices {writes['orm_invoices']:.2f}s, {line_count:,} lines "
            f"{writes['orm_lines']:.2f}s, subscription watermarks {writes['orm_subscriptions']:.2f}s); the run's "
            f"bulk_create/rows_update: {writes['run_total']:.2f}s (invoices {writes['run_invoices']:.2f}s, lines "
            f"{writes['run_lines']:.2f}s, watermarks {writes['run_subscriptions']:.2f}s); COPY of the invoices and "
            f"lines: {writes['copy']:.2f}s]"
        )
        log(
            f"  finalize: {finalize_seconds:.2f}s, of which enqueueing the outbox dispatch tasks "
            f"{enqueue['seconds']:.2f}s; the invoices' finalized fields written with no logic [ORM bulk_update: "
            f"{update['orm']:.2f}s; the run's rows_update: {update['run']:.2f}s]"
        )

        _, stand_in = _renderer()
        what = "a STAND-IN renderer (invoicing.pdf_render is missing)" if stand_in else "invoice_pdf_render"
        log(f"PDFs with {what}: {PDFS} in one process, {PDFS} in each of two at once …")
        ids = list(
            Invoice.objects.filter(bill_point__gt=start_at).order_by("id").values_list("id", flat=True)[: 2 * PDFS]
        )
        schema = tenant.schema_name
    pdf: dict = dict.fromkeys(("pdf_one_process_per_s", "pdf_two_processes_per_s", "pdf_bytes_avg"))
    pdf |= {"pdf_two_processes_per_core_per_s": None, "baseline_trivial_pdf_per_s": None}
    if PDFS:
        pdf = pdf_rates(schema, ids)
        log(
            f"  one process: {pdf['pdf_one_process_per_s']:.1f}/s; two processes: "
            f"{pdf['pdf_two_processes_per_s']:.1f}/s ({pdf['pdf_two_processes_per_core_per_s']:.1f}/s per core); "
            f"~{pdf['pdf_bytes_avg'] / 1024:.0f} kB each "
            f"[baseline, a one-line page: {pdf['baseline_trivial_pdf_per_s']:.1f}/s]"
        )

    results.update(
        {
            "orgs": ORGS,
            "invoices": final.finalized,
            "draft_seconds": round(draft_seconds, 2),
            "finalize_seconds": round(finalize_seconds, 2),
            "invoices_per_s": round(ORGS / (draft_seconds + finalize_seconds), 1),
            "pdf_per_s": _round(
                min(pdf["pdf_one_process_per_s"], pdf["pdf_two_processes_per_core_per_s"]) if PDFS else None
            ),
            "events": EVENTS,
            "lines": line_count,
            "drafts_per_s": round(ORGS / draft_seconds, 1),
            "finalized_per_s": round(ORGS / finalize_seconds, 1),
            "baseline_draft_writes_orm_seconds": round(writes["orm_total"], 2),
            "baseline_draft_writes_run_seconds": round(writes["run_total"], 2),
            "baseline_draft_copy_seconds": round(writes["copy"], 2),
            "baseline_finalize_update_orm_seconds": round(update["orm"], 2),
            "baseline_finalize_update_run_seconds": round(update["run"], 2),
            "finalize_enqueue_seconds": round(enqueue["seconds"], 2),
            "revrec": REVREC,
            "revrec_rows": recognition["rows"],
            "revrec_seconds": round(recognition["seconds"], 2),
            "pdf_one_process_per_s": _round(pdf["pdf_one_process_per_s"]),
            "pdf_two_processes_per_s": _round(pdf["pdf_two_processes_per_s"]),
            "baseline_trivial_pdf_per_s": _round(pdf["baseline_trivial_pdf_per_s"]),
            "pdf_stand_in": stand_in,
            "usage_from_rollups": True,
        }
    )
    log(
        f"targets: all {ORGS:,} drafts in <= 60 s: {'met' if draft_seconds <= 60 else 'MISSED'}; "
        f"PDFs >= 10/s per core: {'not measured' if not PDFS else 'met' if results['pdf_per_s'] >= 10 else 'MISSED'}"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
