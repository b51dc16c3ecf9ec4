"""Revenue analytics of the staff portal (issue 14 item 3): the figures of one day, per currency.

`revenue_data_load` reads subscriptions, invoices and payments once; `revenue_figures` is a pure
function of that data and a day, so the beat task, the backfill command and the tests compute a
day the same way. The page never calls this: it reads `RevenueSnapshot` rows (adminpanel.models),
which `revenue_snapshot_take` writes.

Definitions follow ChartMogul's (docs/staff-analytics.md, and shown on the page):
- A day's figures are the state at the end of that day in UTC (the instant just before the next
  midnight); months are calendar months in UTC.
- MRR is committed recurring revenue: each subscription's base fee of the plan version in effect,
  normalized to a month (quarterly / 3, yearly / 12), less the recurring coupons on it while they
  apply (ChartMogul computes MRR from subscription lines net of their discounts); a "once" coupon
  is a one-off discount on one invoice and leaves MRR alone. Trials, subscriptions not started yet
  and ended ones count zero. Usage is not MRR (Stripe, Lago and ChartMogul leave it out): it is
  shown beside it, from finalized invoices' usage lines by the month their service period starts.
- Movements of a month compare each customer's MRR just before the month began with its MRR at
  the end of the month (or of the day, for the current month): new (0 → >0, never paid before),
  reactivation (0 → >0, paid before), expansion, contraction, churn (>0 → 0).
- Customer (logo) churn rate = customers churned in the month ÷ customers at its start.
  LTV = ARPA ÷ the average customer churn rate of the six months before the current one.
- Cohorts are customers by the month of their first MRR; net retention of month k is the cohort's
  MRR k months later ÷ its MRR at the end of its first month; gross retention caps each customer
  at its first-month MRR (expansion does not count).

Amounts are computed exactly and rounded to the currency's minor unit once, when a figure is
written; rates are percentages to one decimal. A yearly fee / 12 is not a finite decimal, so MRR is
carried as twelve times itself (`annual`: every interval divides a year), summed as Decimals in an
exact context, and divided by 12 only when rounded (Fraction arithmetic there was 90 % of the time
of a day of 10,000 organizations).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction

from dateutil.relativedelta import relativedelta
from django.db import transaction

from core.money import exact_context, round_fraction

# months of each plan interval (billing.models.PlanInterval)
INTERVAL_MONTHS = {"month": 1, "quarter": 3, "year": 12}
USAGE_KINDS = ("usage", "charge_minimum", "correction")
AGING_BUCKETS = ("current", "0-30", "31-60", "61-90", "90+")
COHORT_MONTHS = 12  # cohorts shown, and months followed for each
CHURN_AVERAGE_MONTHS = 6  # ChartMogul's LTV: trailing six months, the current one excluded
_JUST_BEFORE = timedelta(microseconds=1)
ZERO = Decimal(0)


@dataclass(frozen=True)
class PhaseRow:
    organization_id: int
    currency: str
    annual: Decimal  # 12 times the monthly fee: exact for every interval
    starts_at: datetime  # when it counts: the latest of phase start, subscription start, trial end
    ends_at: datetime | None  # the earliest of phase end and subscription end
    subscription_id: int = 0  # what coupons attach to (DiscountRow)
    months: int = 1  # the plan's interval in months: a fixed coupon gives its amount per period


@dataclass(frozen=True)
class DiscountRow:
    """A recurring coupon redemption on a subscription's base fee (billing.CouponRedemption), in
    the order billing applies them (each to what the previous ones left)."""

    subscription_id: int
    percent_off: Decimal | None  # percentage coupons
    amount_off: Decimal | None  # fixed coupons: per billing period, never below zero
    starts_at: datetime  # the latest of its redemption and the start of what it covers
    ends_at: datetime | None  # the earliest of the end of what it covers and its removal

    def off(self, annual: Decimal, months: int) -> Decimal:
        """What it takes off a fee of 12 times `annual`/12 a month billed every `months`."""
        if self.percent_off is not None:
            return annual * self.percent_off / 100
        assert self.amount_off is not None
        return min(annual, self.amount_off * (12 // months))


@dataclass(frozen=True)
class InvoiceRow:
    id: int
    currency: str
    total: Decimal
    due_initial: Decimal  # total less the balance credit applied at finalization
    issued_at: datetime
    due_at: datetime | None
    paid_at: datetime | None
    voided_at: datetime | None
    uncollectible_at: datetime | None = None  # written off: no longer outstanding from then on


@dataclass(frozen=True)
class PaymentRow:
    invoice_id: int
    currency: str
    amount: Decimal
    status: str
    created_at: datetime
    applied_at: datetime | None
    # the gateway time of its latest state (Payment.gateway_state_at): for a failed payment, when
    # it failed; None for rows the gateway never answered
    state_at: datetime | None = None

    @property
    def settled_at(self) -> datetime:
        """When the attempt settled: a success when its money was applied, a failure when the
        gateway said so; its creation when the ledger kept neither."""
        if self.status == "succeeded" and self.applied_at is not None:
            return self.applied_at
        if self.status == "failed" and self.state_at is not None:
            return self.state_at
        return self.created_at


@dataclass
class RevenueData:
    phases: list[PhaseRow] = field(default_factory=list)
    discounts: list[DiscountRow] = field(default_factory=list)
    invoices: list[InvoiceRow] = field(default_factory=list)
    payments: list[PaymentRow] = field(default_factory=list)
    # (currency, month its service period starts in, net of discounts, issued_at, voided_at)
    usage_lines: list[tuple[str, datetime, Decimal, datetime, datetime | None]] = field(default_factory=list)
    # (invoice id, amount credited to the invoice, credit note created_at)
    credit_notes: list[tuple[int, Decimal, datetime]] = field(default_factory=list)
    # succeeded refunds: (currency, amount, when it succeeded)
    refunds: list[tuple[str, Decimal, datetime]] = field(default_factory=list)
    # MRR by instant, shared by the days computed from this data: a backfill of a year asks for the
    # same month boundaries on every day of a month
    _mrr: _Mrr | None = None
    # per invoice: (when, amount) of the payments applied and the credit notes, for write-offs
    _settlements: dict[int, list[tuple[datetime, Decimal]]] | None = None

    def mrr(self) -> _Mrr:
        if self._mrr is None:
            self._mrr = _Mrr(self.phases, self.discounts)
        return self._mrr

    def settlements(self) -> dict[int, list[tuple[datetime, Decimal]]]:
        if self._settlements is None:
            self._settlements = defaultdict(list)
            for p in self.payments:
                if p.applied_at is not None:
                    self._settlements[p.invoice_id].append((p.applied_at, p.amount))
            for invoice_id, amount, created_at in self.credit_notes:
                self._settlements[invoice_id].append((created_at, amount))
        return self._settlements


def revenue_data_load() -> RevenueData:
    """Everything the figures need, in eight queries (values, no model instances)."""
    from auditlog.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    from billing.models import CouponDuration, CouponRedemption, CouponTarget, SubscriptionPhase
    from invoicing.models import CreditNote, Invoice, InvoiceLine
    from payments.models import Payment, Refund

    data = RevenueData()
    for row in SubscriptionPhase.objects.values_list(
        "subscription_id",
        "subscription__organization_id",
        "plan_version__plan__currency",
        "plan_version__plan__interval",
        "plan_version__base_fee",
        "starts_at",
        "ends_at",
        "subscription__started_at",
        "subscription__ended_at",
        "subscription__trial_end",
    ):
        sub, org, currency, interval, fee, starts, ends, sub_start, sub_end, trial_end = row
        if not fee:
            continue
        start = max(starts, sub_start, trial_end or starts)
        end = min((t for t in (ends, sub_end) if t is not None), default=None)
        if end is not None and end <= start:
            continue
        months = INTERVAL_MONTHS[interval]
        data.phases.append(PhaseRow(org, currency, fee * (12 // months), start, end, sub, months))
    # Coupons that reach the base fee, in billing's order (billing.bill.apply_discounts). A "once"
    # coupon discounts the one period it is redeemed in: a one-off, not recurring revenue.
    for sub, percent, amount, redeemed, covers_from, covers_until, removed in (
        CouponRedemption.objects.filter(coupon__applies_to__in=(CouponTarget.BASE_FEE, CouponTarget.INVOICE))
        .exclude(coupon__duration=CouponDuration.ONCE)
        .order_by("redeemed_at", "id")
        .values_list(
            "subscription_id",
            "coupon__percent_off",
            "coupon__amount_off",
            "redeemed_at",
            "covers_from",
            "covers_until",
            "removed_at",
        )
    ):
        end = min((t for t in (covers_until, removed) if t is not None), default=None)
        data.discounts.append(DiscountRow(sub, percent, amount, max(redeemed, covers_from), end))
    for pk, currency, total, credits, issued, due, paid, voided, written_off in (
        Invoice.objects.filter(issued_at__isnull=False)
        .exclude(status="draft")
        .values_list(
            "id",
            "currency",
            "total",
            "credits_applied",
            "issued_at",
            "due_at",
            "paid_at",
            "voided_at",
            "uncollectible_at",
        )
    ):
        data.invoices.append(InvoiceRow(pk, currency, total, total - credits, issued, due, paid, voided, written_off))
    data.payments = [
        PaymentRow(*row)
        for row in Payment.objects.values_list(
            "invoice_id", "currency", "amount", "status", "created_at", "applied_at", "gateway_state_at"
        )
    ]
    data.usage_lines = [
        (currency, month_start(period_start), net, issued, voided)
        for currency, period_start, net, issued, voided in InvoiceLine.objects.filter(
            kind__in=USAGE_KINDS, invoice__issued_at__isnull=False
        )
        .exclude(invoice__status="draft")
        .values_list("currency", "period_start", "net_amount", "invoice__issued_at", "invoice__voided_at")
    ]
    data.credit_notes = list(CreditNote.objects.values_list("invoice_id", "applied_to_invoice", "created_at"))
    # A refund keeps no time of its success; the audit entry of its "refund.succeeded" event
    # (payments.services.refunds.refund_result_record, written in the same transaction) does.
    succeeded = dict(
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Refund), changes__event__1="refund.succeeded"
        ).values_list("object_id", "timestamp")
    )
    data.refunds = [
        (currency, amount, succeeded.get(pk, updated))
        for pk, currency, amount, updated in Refund.objects.filter(status="succeeded").values_list(
            "id", "currency", "amount", "updated_at"
        )
    ]
    return data


def day_end(day: date) -> datetime:
    """The instant a day's figures describe: the next midnight UTC (state just before it)."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def month_start(instant: datetime) -> datetime:
    return instant.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class _Mrr:
    """Each customer's MRR at instants, memoized: movements and cohorts ask for the same month
    boundaries many times."""

    def __init__(self, phases: list[PhaseRow], discounts: Sequence[DiscountRow] = ()):
        self.phases = phases
        self.discounts: dict[int, list[DiscountRow]] = defaultdict(list)
        for discount in discounts:
            self.discounts[discount.subscription_id].append(discount)
        self._at: dict[datetime, dict[tuple[str, int], Decimal]] = {}
        self.first_paid: dict[tuple[str, int], datetime] = {}
        for phase in phases:
            key = (phase.currency, phase.organization_id)
            if key not in self.first_paid or phase.starts_at < self.first_paid[key]:
                self.first_paid[key] = phase.starts_at

    def before(self, instant: datetime) -> dict[tuple[str, int], Decimal]:
        """(currency, organization) -> 12 times MRR just before `instant` (zero ones left out)."""
        if instant not in self._at:
            t = instant - _JUST_BEFORE
            mrr: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
            for phase in self.phases:
                if phase.starts_at <= t and (phase.ends_at is None or t < phase.ends_at):
                    annual = phase.annual
                    for d in self.discounts.get(phase.subscription_id, ()):
                        if d.starts_at <= t and (d.ends_at is None or t < d.ends_at):
                            annual -= d.off(annual, phase.months)
                    if annual:  # a 100 % coupon: no MRR, not a customer
                        mrr[(phase.currency, phase.organization_id)] += annual
            self._at[instant] = dict(mrr)
        return self._at[instant]


@dataclass
class _Movements:
    # amounts are 12 times MRR, as _Mrr's
    new: Decimal = Decimal(0)
    expansion: Decimal = Decimal(0)
    contraction: Decimal = Decimal(0)
    churn: Decimal = Decimal(0)
    reactivation: Decimal = Decimal(0)
    customers_start: int = 0
    customers_new: int = 0
    customers_reactivated: int = 0
    customers_churned: int = 0


def _movements(mrr: _Mrr, start: datetime, end: datetime) -> dict[str, _Movements]:
    before, after = mrr.before(start), mrr.before(end)
    result: dict[str, _Movements] = defaultdict(_Movements)
    for key in before.keys() | after.keys():
        currency = key[0]
        m = result[currency]
        old, new = before.get(key, ZERO), after.get(key, ZERO)
        if old:
            m.customers_start += 1
        if not old and new:
            if mrr.first_paid[key] < start:
                m.reactivation += new
                m.customers_reactivated += 1
            else:
                m.new += new
                m.customers_new += 1
        elif old and not new:
            m.churn += old
            m.customers_churned += 1
        elif new > old:
            m.expansion += new - old
        elif new < old:
            m.contraction += old - new
    return result


def _percent(part: Fraction | Decimal | int, whole: Fraction | Decimal | int) -> str | None:
    """part ÷ whole as a percentage with one decimal, rounded half up (both are never negative)."""
    if not whole:
        return None
    tenths = Fraction(part) / Fraction(whole) * 1000
    return str(Decimal(math.floor(tenths + Fraction(1, 2))).scaleb(-1))


def _money(amount: Fraction | Decimal, currency: str) -> str:
    return str(round_fraction(Fraction(amount), currency))


def _mrr_money(annual: Decimal | Fraction, currency: str) -> str:
    """A 12 times MRR amount as MRR."""
    return _money(Fraction(annual) / 12, currency)


def revenue_figures(*, day: date, data: RevenueData) -> dict[str, dict]:
    """The figures of `day`, per currency, as the JSON a snapshot stores (amounts as decimal
    strings rounded to the currency's minor unit, rates as percent strings, None where a rate has
    no denominator)."""
    with localcontext(exact_context()):  # sums of amounts: exact, or an error
        return _figures(day, data)


def _figures(day: date, data: RevenueData) -> dict[str, dict]:
    at = day_end(day)
    this_month = month_start(at - _JUST_BEFORE)
    mrr = data.mrr()
    now = mrr.before(at)
    currencies = {c for c, _ in now} | {c for (c, _), t in mrr.first_paid.items() if t < at}
    currencies |= {i.currency for i in data.invoices if i.issued_at < at}
    currencies |= {p.currency for p in data.payments if p.created_at < at}
    figures: dict[str, dict] = {}

    current = _movements(mrr, this_month, at)
    past = [
        _movements(mrr, this_month - relativedelta(months=k), this_month - relativedelta(months=k - 1))
        for k in range(1, CHURN_AVERAGE_MONTHS + 1)
    ]
    settled = _settled_before(data, at)
    for currency in sorted(currencies):
        total = sum((v for (c, _), v in now.items() if c == currency), ZERO)  # 12 times MRR
        customers = sum(1 for c, _ in now if c == currency)
        arpa = Fraction(total) / 12 / customers if customers else Fraction(0)
        m = current.get(currency, _Movements())
        rates = [
            Fraction(p[currency].customers_churned, p[currency].customers_start)
            for p in past
            if currency in p and p[currency].customers_start
        ]
        churn_avg = sum(rates, Fraction(0)) / len(rates) if rates else Fraction(0)
        figures[currency] = {
            "mrr": _mrr_money(total, currency),
            "arr": _money(total, currency),
            "customers": customers,
            "arpa": _money(arpa, currency),
            **_usage(data, currency, at, this_month),
            "movements": {
                "month": this_month.strftime("%Y-%m"),
                "new": _mrr_money(m.new, currency),
                "expansion": _mrr_money(m.expansion, currency),
                "contraction": _mrr_money(m.contraction, currency),
                "churn": _mrr_money(m.churn, currency),
                "reactivation": _mrr_money(m.reactivation, currency),
                "net": _mrr_money(m.new + m.expansion + m.reactivation - m.contraction - m.churn, currency),
                "customers_start": m.customers_start,
                "customers_new": m.customers_new,
                "customers_reactivated": m.customers_reactivated,
                "customers_churned": m.customers_churned,
            },
            "customer_churn_rate": _percent(m.customers_churned, m.customers_start),
            "customer_churn_rate_6m": _percent(churn_avg, 1) if rates else None,
            "ltv": _money(arpa / churn_avg, currency) if churn_avg else None,
            **_receivables(data, currency, at, this_month, settled),
            **_collection(data, currency, at, this_month),
            "cohorts": _cohorts(mrr, currency, at, this_month),
        }
    return figures


def _usage(data: RevenueData, currency: str, at: datetime, this_month: datetime) -> dict:
    by_month: dict[datetime, Decimal] = defaultdict(Decimal)
    for line_currency, month, amount, issued_at, voided_at in data.usage_lines:
        if line_currency != currency or issued_at >= at or (voided_at is not None and voided_at < at):
            continue
        by_month[month] += amount
    closed = [this_month - relativedelta(months=k) for k in (1, 2, 3)]
    return {
        "usage_last_period": {"month": closed[0].strftime("%Y-%m"), "amount": _money(by_month[closed[0]], currency)},
        "usage_avg_3m": _money(Fraction(sum((by_month[m] for m in closed), Decimal(0))) / 3, currency),
    }


def _settled_before(data: RevenueData, at: datetime) -> tuple[dict[int, Decimal], dict[int, Decimal]]:
    """Per invoice: payments applied and credit notes applied before `at`."""
    paid: dict[int, Decimal] = defaultdict(Decimal)
    for p in data.payments:
        if p.applied_at is not None and p.applied_at < at:
            paid[p.invoice_id] += p.amount
    credited: dict[int, Decimal] = defaultdict(Decimal)
    for invoice_id, amount, created_at in data.credit_notes:
        if created_at < at:
            credited[invoice_id] += amount
    return paid, credited


def _receivables(
    data: RevenueData,
    currency: str,
    at: datetime,
    this_month: datetime,
    settled: tuple[dict[int, Decimal], dict[int, Decimal]],
) -> dict:
    paid, credited = settled
    invoiced = outstanding = written_off = Decimal(0)
    aging = dict.fromkeys(AGING_BUCKETS, Decimal(0))
    for i in data.invoices:
        if i.currency != currency or i.issued_at >= at or (i.voided_at is not None and i.voided_at < at):
            continue
        if i.issued_at >= this_month:
            invoiced += i.total
        if i.uncollectible_at is not None and i.uncollectible_at < at:
            if this_month <= i.uncollectible_at:
                written_off += max(_owed_at(data, i, i.uncollectible_at), ZERO)
            continue  # written off: still payable, no longer a receivable
        if i.paid_at is not None and i.paid_at < at:
            continue
        left = i.due_initial - paid[i.id] - credited[i.id]
        if left <= 0:
            continue
        outstanding += left
        days = (at - i.due_at).days if i.due_at is not None and i.due_at < at else -1
        bucket = (
            "current"
            if days < 0
            else "0-30"
            if days <= 30
            else "31-60"
            if days <= 60
            else "61-90"
            if days <= 90
            else "90+"
        )
        aging[bucket] += left
    collected = sum(
        (
            p.amount
            for p in data.payments
            if p.currency == currency and p.applied_at is not None and this_month <= p.applied_at < at
        ),
        Decimal(0),
    )
    refunded = sum((a for c, a, t in data.refunds if c == currency and this_month <= t < at), Decimal(0))
    return {
        "invoiced": _money(invoiced, currency),
        # ChartMogul's gross and net cash flow: payments received, then less refunds that succeeded
        "collected_gross": _money(collected, currency),
        "refunded": _money(refunded, currency),
        "collected": _money(collected - refunded, currency),
        "outstanding": _money(outstanding, currency),
        "written_off": _money(written_off, currency),
        "aging": {k: _money(v, currency) for k, v in aging.items()},
    }


def _owed_at(data: RevenueData, invoice: InvoiceRow, instant: datetime) -> Decimal:
    """What `invoice` still owed just before `instant`: the amount a write-off then gave up."""
    settled = sum((a for t, a in data.settlements().get(invoice.id, ()) if t < instant), ZERO)
    return invoice.due_initial - settled


def _collection(data: RevenueData, currency: str, at: datetime, this_month: datetime) -> dict:
    month_payments = [p for p in data.payments if p.currency == currency and this_month <= p.settled_at < at]
    settled = [p for p in month_payments if p.status in ("succeeded", "failed")]
    failed = [p for p in settled if p.status == "failed"]
    paid_at = {i.id: i.paid_at for i in data.invoices}
    failed_invoices = {p.invoice_id for p in failed}
    recovered = {pk for pk in failed_invoices if paid_at.get(pk) is not None and paid_at[pk] < at}
    return {
        "payments_settled": len(settled),
        "payments_failed": len(failed),
        "failed_payment_rate": _percent(len(failed), len(settled)),
        "invoices_failed": len(failed_invoices),
        "invoices_recovered": len(recovered),
        "recovery_rate": _percent(len(recovered), len(failed_invoices)),
    }


def _cohorts(mrr: _Mrr, currency: str, at: datetime, this_month: datetime) -> list[dict]:
    first = this_month - relativedelta(months=COHORT_MONTHS - 1)
    members: dict[datetime, list[int]] = defaultdict(list)
    for (c, org), started in mrr.first_paid.items():
        if c == currency and first <= started < at:
            members[month_start(started)].append(org)
    rows = []
    for cohort in sorted(members):
        ends = []
        month = cohort
        while month <= this_month:
            ends.append(min(month + relativedelta(months=1), at))
            month += relativedelta(months=1)
        base = {org: mrr.before(ends[0]).get((currency, org), ZERO) for org in members[cohort]}
        base_total = sum(base.values(), ZERO)
        retention = []
        for end in ends:
            later = mrr.before(end)
            values = {org: later.get((currency, org), ZERO) for org in base}
            retention.append(
                {
                    "nrr": _percent(sum(values.values(), ZERO), base_total),
                    "grr": _percent(sum((min(values[o], base[o]) for o in base), ZERO), base_total),
                }
            )
        rows.append(
            {
                "cohort": cohort.strftime("%Y-%m"),
                "customers": sum(1 for v in base.values() if v),
                "mrr": _mrr_money(base_total, currency),
                "retention": retention,  # month 0 (the cohort's own), 1, 2, ...
            }
        )
    return rows


def revenue_snapshot_take(*, day: date, data: RevenueData | None = None) -> int:
    """Write (or rewrite) the snapshot rows of `day`, one per currency; returns how many. Safe to
    run again: a day's rows are replaced, and a later run sees later facts (a payment that
    arrived, a backdated credit note)."""
    from adminpanel.models import RevenueSnapshot

    figures = revenue_figures(day=day, data=data if data is not None else revenue_data_load())
    with transaction.atomic():
        RevenueSnapshot.objects.filter(day=day).exclude(currency__in=list(figures)).delete()
        for currency, values in figures.items():
            RevenueSnapshot.objects.update_or_create(day=day, currency=currency, defaults={"figures": values})
    return len(figures)
