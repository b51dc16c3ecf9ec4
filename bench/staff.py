"""p95 of every staff page of issue 14 (home, organization search, organization 360, audit log and
its CSV export, dunning, analytics, revenue recognition, accounting exports, compliance) on a
dataset of 10,000 organizations and a year of snapshots.

The customers are written with bulk inserts (no services: seeding through them would take an
hour): per organization twelve monthly invoices (a fee line in advance and the previous month's
usage line) with one payment each, the last one open and in dunning for 5 % of them (its case, its
account past due or suspended), and ten audit entries; so 10,000 organizations, 120,000 invoices
and payments, 240,000 lines, 500 dunning cases and 100,000 audit entries (about two minutes to
seed on 2 cores; reused while the size is the same). Then what the newer pages read
(`seed_revenue`): each line's revenue recognition rows as finalization writes them (monthly grain,
about 450,000 rows; the bulk rows are compared with `revenue_schedule_build`'s on three invoices
and the seed stops if they differ), the months closed 35 days after they ended, 28 finished
accounting exports, and the compliance checks' stored results (the dashboard reads those; beat's
`compliance_run` writes them, timed once here as `compliance_run_s`).

The analytics page reads `RevenueSnapshot` rows only (adminpanel.analytics_report), so its data is
made of those rows directly, for speed: a year of days (default 365) in each of three currencies, each
row's figures shaped as `revenue_figures` writes them for 10,000 organizations (the customers
split 70 / 20 / 10 across EUR / USD / GBP, twelve cohorts of up to twelve months). Then a staff
user who passed the second factor (the real allauth flow, a viewer) asks for each page with random
parameters (an organization, a page of a list, a day and currency, a 12-month window of the
waterfall, a week of the audit log's CSV), the staff home page being the baseline of the same run.

Prints one line per page and, last, a JSON line: `pages` (page → p95 ms), `max_p95_ms`,
`target_ms` (500), `requests` per page, the dataset's size, `uptime` (the load during the run),
and `snapshot_compute_s_per_day`: what
computing one day's snapshot costs for that many organizations (in memory, see
`compute_seconds_per_day`), i.e. beat's hourly work per tenant and a backfill's per day.

    make bench-staff
    BENCH_STAFF_DAYS=365 BENCH_STAFF_ORGS=10000 BENCH_STAFF_REQUESTS=200 make bench-staff
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "false")  # no query log, as in production

from ingest import manage  # noqa: E402

SLUG = "staffbench"
DAYS = int(os.environ.get("BENCH_STAFF_DAYS", "365"))
ORGS = int(os.environ.get("BENCH_STAFF_ORGS", "10000"))
REQUESTS = int(os.environ.get("BENCH_STAFF_REQUESTS", "200"))
TARGET_MS = 500
SHARES = {"EUR": 70, "USD": 20, "GBP": 10}
FEES = {"EUR": 49, "USD": 59, "GBP": 45}
SEED = 3  # bump when the rows' shape changes: older rows are written again
INVOICES_PER_ORG = 12
AUDIT_PER_ORG = 10
IN_DUNNING = 20  # one organization in IN_DUNNING is in dunning
CUSTOMER_SEED = 2  # bump when the customers' shape changes


def log(message: str) -> None:
    print(message, flush=True)


def figures(day: date, currency: str, rng: random.Random) -> dict:
    """A plausible day of `revenue_figures` output (values vary; the shape is what costs)."""
    customers = ORGS * SHARES[currency] // 100
    mrr = customers * FEES[currency]

    def money(value: float) -> str:
        return f"{value:.2f}"

    def retention() -> dict:
        net = rng.uniform(60, 130)
        return {"nrr": f"{net:.1f}", "grr": f"{min(net, 100) * rng.uniform(0.9, 1):.1f}"}

    month = day.strftime("%Y-%m")
    cohorts = []
    for k in range(12, 0, -1):
        start = (day.replace(day=1) - timedelta(days=31 * (k - 1))).strftime("%Y-%m")
        cohorts.append(
            {
                "cohort": start,
                "customers": customers // 40,
                "mrr": money(customers // 40 * FEES[currency]),
                "retention": [retention() for _ in range(k)],
            }
        )
    return {
        "mrr": money(mrr),
        "arr": money(mrr * 12),
        "customers": customers,
        "arpa": money(FEES[currency]),
        "usage_last_period": {
            "month": (day.replace(day=1) - timedelta(days=1)).strftime("%Y-%m"),
            "amount": money(mrr * 0.4),
        },
        "usage_avg_3m": money(mrr * 0.38),
        "movements": {
            "month": month,
            **{
                k: money(rng.uniform(0, mrr / 50)) for k in ("new", "expansion", "contraction", "churn", "reactivation")
            },
            "net": money(rng.uniform(-mrr / 100, mrr / 50)),
            "customers_start": customers,
            "customers_new": customers // 50,
            "customers_reactivated": customers // 400,
            "customers_churned": customers // 60,
        },
        "customer_churn_rate": "1.7",
        "customer_churn_rate_6m": "1.6",
        "ltv": money(FEES[currency] / 0.016),
        "invoiced": money(mrr * 1.3),
        "collected_gross": money(mrr * 1.21),
        "refunded": money(mrr * 0.01),
        "collected": money(mrr * 1.2),
        "outstanding": money(mrr * 0.3),
        "written_off": money(mrr * 0.02),
        "aging": {b: money(mrr * 0.05) for b in ("current", "0-30", "31-60", "61-90", "90+")},
        "payments_settled": customers,
        "payments_failed": customers // 25,
        "failed_payment_rate": "4.0",
        "invoices_failed": customers // 25,
        "invoices_recovered": customers // 40,
        "recovery_rate": "62.5",
        "cohorts": cohorts,
        "bench_seed": SEED,  # not a figure: says which generator wrote the row
    }


def seed(today: date) -> str:
    """The tenant, its year of snapshots (rewritten when the size asked for changed) and a staff
    user; returns the tenant's domain and the user's login."""
    import django

    django.setup()
    from django_tenants.utils import schema_context

    from adminpanel.models import RevenueSnapshot
    from tenants.models import Tenant
    from tenants.services.tenant_provision import tenant_create

    tenant = Tenant.objects.filter(slug=SLUG).first() or tenant_create(name="Staff bench", slug=SLUG).tenant
    with schema_context(tenant.schema_name):
        first = today - timedelta(days=DAYS - 1)
        marker = RevenueSnapshot.objects.filter(day=first, currency="EUR").values_list("figures", flat=True).first()
        if (
            marker is None
            or marker.get("bench_seed") != SEED
            or marker["customers"] != ORGS * SHARES["EUR"] // 100
            or RevenueSnapshot.objects.filter(day__lt=first).exists()
        ):
            started = time.perf_counter()
            RevenueSnapshot.objects.all().delete()
            rng = random.Random(14)
            rows = [
                RevenueSnapshot(
                    day=first + timedelta(days=d), currency=c, figures=figures(first + timedelta(days=d), c, rng)
                )
                for d in range(DAYS)
                for c in SHARES
            ]
            RevenueSnapshot.objects.bulk_create(rows, batch_size=500)
            log(f"seeded {len(rows)} snapshot rows in {time.perf_counter() - started:.1f} s")
        else:
            log(f"reusing {RevenueSnapshot.objects.count()} snapshot rows")
    return tenant.get_primary_domain().domain


def seed_customers(tenant, today: date) -> None:
    """ORGS organizations with their invoices, payments, dunning and audit entries, unless the
    tenant holds that many already (from the same generator)."""
    from auditlog.models import LogEntry
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from django_tenants.utils import schema_context

    from billing.models import Organization
    from dunning.models import DunningAccount, DunningCase
    from invoicing.models import Invoice, InvoiceLine
    from payments.models import Payment

    with schema_context(tenant.schema_name):
        marker = f"bench-{CUSTOMER_SEED}-{ORGS:05}"
        if Organization.objects.filter(external_id=marker).exists() and Organization.objects.count() == ORGS:
            log(f"reusing {ORGS} organizations")
            return
        started = time.perf_counter()
        with connection.cursor() as cursor:  # the tenant's own schema: nothing else lives there
            cursor.execute(
                "TRUNCATE auditlog_logentry, dunning_dunningstep, dunning_dunningcase, dunning_dunningaccount, "
                "payments_payment, invoicing_revenuemonthclose, invoicing_revenueentry, invoicing_invoiceline, "
                "invoicing_invoice, billing_organization, adminpanel_compliancecheck CASCADE"
            )
        rng = random.Random(3)
        currencies = [c for c, share in SHARES.items() for _ in range(share)]
        now = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
        organizations = Organization.objects.bulk_create(
            [
                Organization(
                    external_id=f"bench-{CUSTOMER_SEED}-{n:05}",
                    name=f"Customer {n:05} {rng.choice(['GmbH', 'Ltd', 'Inc', 'SAS'])}",
                    currency=rng.choice(currencies),
                    billing_email=f"ap-{n:05}@customer.example",
                    timezone=rng.choice(["UTC", "Europe/Berlin", "America/New_York"]),
                )
                for n in range(1, ORGS + 1)
            ],
            batch_size=2000,
        )
        invoices, dunned = [], []
        for org in organizations:
            in_dunning = org.pk % IN_DUNNING == 0
            for m in range(INVOICES_PER_ORG):
                issued = now - timedelta(days=30 * (INVOICES_PER_ORG - m))
                total = Decimal(FEES[org.currency] + rng.randrange(0, 200))
                open_ = in_dunning and m == INVOICES_PER_ORG - 1
                invoices.append(
                    Invoice(
                        organization=org,
                        currency=org.currency,
                        number=f"B{org.pk:06}-{m + 1:02}",
                        status="open" if open_ else "paid",
                        subtotal=total,
                        total=total,
                        amount_due=total if open_ else Decimal(0),
                        amount_paid=Decimal(0) if open_ else total,
                        issued_at=issued,
                        due_at=issued + timedelta(days=14),
                        paid_at=None if open_ else issued + timedelta(days=2),
                    )
                )
        invoices = Invoice.objects.bulk_create(invoices, batch_size=5000)
        # Each invoice's lines as finalization leaves them: the month's fee in advance and the
        # previous month's usage (the rest of the total; no tax, no discount, so net = amount).
        period = timedelta(days=30)
        lines = []
        for invoice in invoices:
            fee = Decimal(FEES[invoice.currency])
            common = {"invoice": invoice, "currency": invoice.currency}
            lines.append(
                InvoiceLine(
                    **common,
                    position=1,
                    kind="base_fee",
                    description="Plan fee",
                    quantity=Decimal(1),
                    unit_amount=fee,
                    amount=fee,
                    net_amount=fee,
                    period_start=invoice.issued_at,
                    period_end=invoice.issued_at + period,
                    billing_period_start=invoice.issued_at,
                    billing_period_end=invoice.issued_at + period,
                )
            )
            lines.append(
                InvoiceLine(
                    **common,
                    position=2,
                    kind="usage",
                    description="API calls",
                    meter_code="api_calls",
                    quantity=(invoice.total - fee) * 1000,
                    unit_amount=Decimal("0.001"),
                    amount=invoice.total - fee,
                    net_amount=invoice.total - fee,
                    period_start=invoice.issued_at - period,
                    period_end=invoice.issued_at,
                    billing_period_start=invoice.issued_at - period,
                    billing_period_end=invoice.issued_at,
                )
            )
        InvoiceLine.objects.bulk_create(lines, batch_size=5000)
        payments = []
        for invoice in invoices:
            failed = invoice.status == "open"
            payments.append(
                Payment(
                    invoice=invoice,
                    organization_id=invoice.organization_id,
                    number=1,
                    idempotency_key=f"bench-{invoice.pk}-1",
                    gateway="stripe",
                    amount=invoice.total,
                    currency=invoice.currency,
                    status="failed" if failed else "succeeded",
                    failure_code="card_declined" if failed else "",
                )
            )
            if failed:
                dunned.append(invoice)
        Payment.objects.bulk_create(payments, batch_size=5000)
        DunningCase.objects.bulk_create(
            [
                DunningCase(
                    invoice=i,
                    organization_id=i.organization_id,
                    started_at=i.due_at,
                    stage=rng.choice(["past_due", "restricted", "suspended"]),
                )
                for i in dunned
            ]
        )
        DunningAccount.objects.bulk_create(
            [
                DunningAccount(
                    organization_id=i.organization_id,
                    status=rng.choice(["past_due", "suspended"]),
                    since=i.due_at,
                    reason=f"payment failed: invoice {i.number}",
                )
                for i in dunned
            ]
        )
        org_type = ContentType.objects.get_for_model(Organization)
        LogEntry.objects.bulk_create(
            [
                LogEntry(
                    content_type=org_type,
                    object_pk=str(org.pk),
                    object_id=org.pk,
                    object_repr=org.name,
                    action=LogEntry.Action.UPDATE,
                    changes={"event": [None, rng.choice(["staff_note.added", "dunning.transition", "credit"])]},
                    timestamp=now - timedelta(minutes=rng.randrange(60 * 24 * 365)),
                )
                for org in organizations
                for _ in range(AUDIT_PER_ORG)
            ],
            batch_size=5000,
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        log(
            f"seeded {ORGS} organizations, {len(invoices)} invoices and payments, {len(dunned)} dunning cases, "
            f"{len(lines)} lines, {ORGS * AUDIT_PER_ORG} audit entries in {time.perf_counter() - started:.1f} s"
        )


def _revenue_rows(invoices, lines) -> list:
    """The recognition rows finalization writes for `lines` (invoicing.services.revenue
    `revenue_schedule_build`, every month open then): a fee over the months of its service period,
    usage over the months it was consumed in, each month's share from the service's own rounding
    point (`month_shares`). `seed_revenue` checks them against the service on a few invoices."""
    from invoicing.models import RevenueEntry, RevenuePattern, RevenueSource
    from invoicing.services.revenue import month_shares, month_weights

    patterns = {"base_fee": RevenuePattern.RATABLE, "usage": RevenuePattern.USAGE}
    rows = []
    for line in lines:
        if line.net_amount == 0:
            continue
        invoice = invoices[line.invoice_id]
        weights = month_weights(line.period_start, line.period_end)
        rows += [
            RevenueEntry(
                line_id=line.pk,
                invoice_id=invoice.pk,
                source=RevenueSource.INVOICE,
                pattern=patterns[line.kind],
                currency=invoice.currency,
                service_on=month,
                recognized_on=month,
                booked_on=invoice.issued_at.astimezone(UTC).date(),
                amount=share,
            )
            for month, share in month_shares(line.net_amount, invoice.currency, weights)
        ]
    return rows


def _schedule(invoice_ids) -> list[tuple]:
    from invoicing.models import RevenueEntry

    fields = ("line_id", "invoice_id", "credit_note_id", "source", "pattern", "currency")
    fields += ("service_on", "recognized_on", "booked_on", "amount")
    return sorted(RevenueEntry.objects.filter(invoice_id__in=invoice_ids).values_list(*fields))


def seed_revenue(tenant, today: date) -> float | None:
    """What the revenue, exports and compliance pages read: the recognition schedule of every
    seeded invoice (bulk-inserted, shaped as finalization writes it, checked against the service),
    the months closed 35 days after they ended (so no row written later falls in a closed month), a
    few finished accounting exports, and the compliance checks' stored results (run once through
    `compliance_run`, beat's work; returns its seconds when it ran)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django_tenants.utils import schema_context

    from adminpanel.compliance import compliance_run
    from adminpanel.exports import DATASETS
    from adminpanel.models import ComplianceCheck
    from invoicing.models import AccountingExport, Invoice, InvoiceLine, RevenueEntry, RevenueMonthClose
    from invoicing.services.revenue import month_end, revenue_schedule_build

    with schema_context(tenant.schema_name):
        if not RevenueEntry.objects.exists():
            started = time.perf_counter()
            with transaction.atomic():
                invoices = Invoice.objects.only("pk", "currency", "issued_at").in_bulk()
                written = 0
                lines = InvoiceLine.objects.only(
                    "pk", "invoice_id", "kind", "net_amount", "period_start", "period_end"
                ).order_by("invoice_id", "position")
                chunk = []
                for line in lines.iterator(chunk_size=20000):
                    chunk.append(line)
                    if len(chunk) == 20000:
                        written += len(
                            RevenueEntry.objects.bulk_create(_revenue_rows(invoices, chunk), batch_size=5000)
                        )
                        chunk = []
                written += len(RevenueEntry.objects.bulk_create(_revenue_rows(invoices, chunk), batch_size=5000))
                # The same invoices through the service (rolled back): the bulk rows must be its rows.
                sample = sorted(random.Random(5).sample(sorted(invoices), 3))
                seeded = _schedule(sample)
                with transaction.atomic():
                    RevenueEntry.objects.filter(invoice_id__in=sample).delete()
                    revenue_schedule_build(Invoice.objects.filter(pk__in=sample))
                    built = _schedule(sample)
                    transaction.set_rollback(True)
                assert seeded == built and seeded, ("seeded rows differ from the service's", seeded, built)
                closes = []
                month = min(i.issued_at for i in invoices.values()).date().replace(day=1) - timedelta(days=31)
                month = month.replace(day=1)
                while month_end(month) + timedelta(days=35) <= today:
                    at = datetime.combine(month_end(month) + timedelta(days=35), datetime.min.time(), tzinfo=UTC)
                    closes.append(RevenueMonthClose(month=month, closed_at=at))
                    month = (month + timedelta(days=32)).replace(day=1)
                RevenueMonthClose.objects.bulk_create(closes)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE invoicing_revenueentry")
            log(
                f"seeded {written} revenue rows ({len(sample)} invoices checked against the service), "
                f"{len(closes)} closed months in {time.perf_counter() - started:.1f} s"
            )
        if not AccountingExport.objects.exists():
            finance = get_user_model().objects.filter(staff_role__isnull=False).order_by("pk").first()
            exports = []
            for k, kind in enumerate(k for k in DATASETS for _ in range(4)):
                end = month_end(today.replace(day=1) - timedelta(days=1 + 30 * (k % 4)))
                exports.append(
                    AccountingExport(
                        kind=kind,
                        spec={
                            "from": str(end.replace(day=1)),
                            "to": str(end),
                            "currency": "EUR" if DATASETS[kind].one_currency else "",
                            "tax_rate": "Tax Exempt" if kind == "journal_xero" else "",
                        },
                        requested_by=finance,
                        status=AccountingExport.Status.DONE,
                        done=ORGS,
                        total=ORGS,
                        rows=ORGS * 2,
                        finished_at=datetime.combine(end, datetime.min.time(), tzinfo=UTC),
                    )
                )
            AccountingExport.objects.bulk_create(exports)
            log(f"seeded {len(exports)} accounting exports")
        if not ComplianceCheck.objects.exists():
            started = time.perf_counter()
            compliance_run()
            seconds = time.perf_counter() - started
            log(f"compliance checks (compliance_run, beat's work) in {seconds:.1f} s")
            return seconds
    return None


def compute_seconds_per_day(today: date, days: int = 10) -> float:
    """What beat pays per day and tenant: `revenue_figures` on in-memory data of ORGS organizations
    (a year of monthly invoices each, 90 % paid, one payment each, a usage line each; 30 % churn
    within 30 to 500 days; 20 % with a coupon, half of them forever and half for three months; 1 %
    of the payments partly refunded; half the unpaid invoices written off two months after they were
    due), so the figure is the computation's, without the load queries."""
    from adminpanel.analytics import (
        DiscountRow,
        InvoiceRow,
        PaymentRow,
        PhaseRow,
        RevenueData,
        month_start,
        revenue_figures,
    )

    rng = random.Random(7)
    data = RevenueData()
    start = datetime.combine(today - timedelta(days=365), datetime.min.time(), tzinfo=UTC)
    currencies = [c for c, share in SHARES.items() for _ in range(share)]
    for org in range(ORGS):
        currency = rng.choice(currencies)
        begins = start + timedelta(days=rng.randrange(365))
        ends = begins + timedelta(days=rng.randrange(30, 500)) if rng.random() < 0.3 else None
        data.phases.append(PhaseRow(org, currency, Decimal(FEES[currency] * 12), begins, ends, org, 1))
        if rng.random() < 0.2:
            until = None if rng.random() < 0.5 else begins + timedelta(days=91)
            data.discounts.append(DiscountRow(org, Decimal(20), None, begins, until))
        for m in range(12):
            issued = start + timedelta(days=30 * m + 1)
            if issued < begins:
                continue
            pk, total = org * 100 + m, Decimal("120.00")
            paid = issued + timedelta(days=3) if rng.random() < 0.9 else None
            due = issued + timedelta(days=14)
            written_off = due + timedelta(days=60) if not paid and rng.random() < 0.5 else None
            data.invoices.append(InvoiceRow(pk, currency, total, total, issued, due, paid, None, written_off))
            status = "succeeded" if paid else "failed"
            data.payments.append(PaymentRow(pk, currency, total, status, issued, paid, paid or issued))
            if paid and rng.random() < 0.01:
                data.refunds.append((currency, Decimal("20.00"), paid + timedelta(days=5)))
            data.usage_lines.append(
                (currency, month_start(issued - timedelta(days=30)), Decimal("20.00"), issued, None)
            )
    started = time.perf_counter()
    for k in range(days):
        revenue_figures(day=today - timedelta(days=k), data=data)
    return (time.perf_counter() - started) / days


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def main() -> None:
    manage("platform_migrate", "-v", "0")
    today = date.today()
    domain = seed(today)
    from django.test import Client
    from django_tenants.utils import schema_context

    from tenants.models import Tenant
    from tests.factories import UserFactory, totp_enable
    from tests.helpers import staff_login

    tenant = Tenant.objects.get(slug=SLUG)
    seed_customers(tenant, today)
    compliance_seconds = seed_revenue(tenant, today)
    with schema_context(tenant.schema_name):
        from billing.models import Organization
        from invoicing.models import RevenueEntry
        from invoicing.selectors.revenue import month_add

        revenue_rows = RevenueEntry.objects.count()
        organization_pks = list(Organization.objects.values_list("pk", flat=True))
    with schema_context(tenant.schema_name):
        user = UserFactory(staff_role="viewer", email=f"staff-{time.time_ns()}@bench.example")  # one per run
        secret = totp_enable(user)
    client = Client(HTTP_HOST=domain)
    staff_login(client, email=user.email, totp_secret=secret)

    rng = random.Random(1)

    def organization_id() -> str:
        return f"bench-{CUSTOMER_SEED}-{rng.randrange(1, ORGS + 1):05}"

    pages = {
        "staff_home": lambda: "/staff/",
        "staff_organizations": lambda: f"/staff/organizations/?q=customer+{rng.randrange(ORGS // 10):04}",
        "staff_organizations_all": lambda: f"/staff/organizations/?page={rng.randrange(1, ORGS // 25)}",
        "staff_organization": lambda: f"/staff/organizations/{organization_id()}/",
        "staff_audit": lambda: f"/staff/audit/?page={rng.randrange(1, 40)}",
        "staff_audit_filtered": lambda: "/staff/audit/?event=staff_note.added",
        "staff_dunning": lambda: f"/staff/dunning/?page={rng.randrange(1, 4)}",
        "staff_analytics": lambda: (
            f"/staff/analytics/?as_of={today - timedelta(days=rng.randrange(DAYS))}&currency={rng.choice(list(SHARES))}"
        ),
        "staff_analytics_latest": lambda: "/staff/analytics/",
        "staff_revenue": lambda: (
            f"/staff/revenue/?currency={rng.choice(list(SHARES))}"
            f"&from={month_add(today.replace(day=1), -rng.randrange(6, 18)):%Y-%m}"
        ),
        "staff_revenue_latest": lambda: "/staff/revenue/",
        "staff_exports": lambda: "/staff/exports/",
        "staff_compliance": lambda: "/staff/compliance/",
        # The audit log's CSV: one organization's trail (what an auditor asks for), and a week of
        # every entry.
        "staff_audit_export_organization": lambda: (
            f"/staff/audit/export.csv?object_type=billing.organization&object_id={rng.choice(organization_pks)}"
        ),
        "staff_audit_export_week": lambda: (
            f"/staff/audit/export.csv?since={(week := today - timedelta(days=rng.randrange(7, DAYS)))}"
            f"&until={week + timedelta(days=6)}"
        ),
    }
    results = {}
    for name, url in pages.items():
        for _ in range(5):  # warm: templates compiled, connections open
            client.get(url())
        samples = []
        for _ in range(REQUESTS):
            target = url()
            started = time.perf_counter()
            response = client.get(target)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (target, response.status_code)
        results[name] = round(p95(samples), 1)
        log(f"{name}: p95 {results[name]} ms, median {statistics.median(samples):.1f} ms over {REQUESTS} requests")
    per_day = compute_seconds_per_day(today)
    log(f"snapshot computation: {per_day:.2f} s per day of {ORGS} organizations")
    print(
        json.dumps(
            {
                "pages": results,
                "max_p95_ms": max(results.values()),
                "target_ms": TARGET_MS,
                "requests": REQUESTS,
                "organizations": ORGS,
                "days": DAYS,
                "snapshot_rows": DAYS * len(SHARES),
                "snapshot_compute_s_per_day": round(per_day, 2),
                "invoices": ORGS * INVOICES_PER_ORG,
                "audit_entries": ORGS * AUDIT_PER_ORG,
                "dunning_cases": ORGS // IN_DUNNING,
                "revenue_entries": revenue_rows,
                "compliance_run_s": round(compliance_seconds, 1) if compliance_seconds is not None else None,
                "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
