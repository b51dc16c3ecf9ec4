"""A year of billing with time travel: one tenant, a DE seller (registered in DE, for EU OSS and in
New York), nineteen customers each on its own subscription, and the billing run called twice a day
(00:00 and 12:00 UTC) from 2028-01-01 (a leap year) to 2029-01-02. Plan changes, cancellations,
coupon redemptions, credit grants and usage events happen at chosen instants inside that loop,
some events late: inside a draft's grace period (they count on that invoice) and after
finalization (a correction line on the next invoice).

Every line of every invoice is asserted (kind, description, amount, tax, rate, service period),
with each invoice's bill point, totals, number, status, issue date, credits applied and amount
due, the subscriptions' final statuses and the final credit balances.

The expectations are NOT taken from the code under test. Usage amounts are literal, with the tier
arithmetic beside them; prorations come from a small oracle below (seconds of the period computed
from local wall times with zoneinfo, the fee times an exact Fraction rounded half-up to the cent);
taxes, totals, invoice numbers (gap-free, in finalization order) and the credit ledger (after tax,
soonest-expiring first) are simulated by the oracle from the expected lines.

The year is simulated once per module (a module-scoped fixture inside one transaction that is
rolled back at the end), so each customer's expectations are a test case of their own and a
genuine bug could be marked xfail(strict=True) on the one invoice it affects. (It found four,
since fixed: late usage on plans longer than the event window, a fixed coupon's spent period
discounting a correction, change previews without corrections, and a change at the very second of
a billed bill point.)"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import msgspec
import pytest
import time_machine
from django.db import connection, transaction
from django_tenants.utils import tenant_context

from billing.models import Coupon, CreditKind, PlanVersion, Subscription, SubscriptionPhase
from billing.selectors.credit import credit_balance_get
from billing.services.coupon import coupon_create, coupon_redeem
from billing.services.credit import credit_grant
from billing.services.plan import ChargeInput, VersionInput, plan_create
from billing.services.subscription import (
    subscription_cancel,
    subscription_change_plan,
    subscription_create,
    subscription_resume,
)
from core.errors import DomainError
from invoicing.models import Invoice, InvoiceLine, InvoicingSettings
from invoicing.services.billing_run import billing_run
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from metering.services.meter import meter_create
from tests.factories import TENANT_SLUGS, MeterFactory, OrganizationFactory

D = Decimal
ZERO = Decimal("0.00")
BERLIN, PARIS, NEW_YORK = "Europe/Berlin", "Europe/Paris", "America/New_York"
GRACE = timedelta(hours=24)  # InvoicingSettings.grace_hours default
TERMS = timedelta(days=14)  # payment_terms_days default
FIRST_RUN, LAST_RUN = datetime(2028, 1, 1, tzinfo=UTC), datetime(2029, 1, 2, 12, tzinfo=UTC)
RUNS = [FIRST_RUN + timedelta(hours=12 * i) for i in range(int((LAST_RUN - FIRST_RUN) / timedelta(hours=12)) + 1)]


# ---------------------------------------------------------------------------------------------
# The oracle: time, proration, tax, numbering and the credit ledger from first principles
# ---------------------------------------------------------------------------------------------


def t(year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, tz: str = "UTC") -> datetime:
    """A local wall time in `tz` as an aware UTC instant. A wall time in the spring-forward gap is
    read with the offset before the gap (zoneinfo's fold=0), the rule billing.periods documents."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def secs(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds())


def cents(value: Fraction) -> Decimal:
    """Half-up to the cent, ties away from zero (a credit mirrors the charge)."""
    scaled = abs(value) * 100
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    whole += 1 if 2 * rest >= scaled.denominator else 0
    return (Decimal(whole if value >= 0 else -whole) / 100).quantize(D("0.01"))


def prorated(fee: str, start: datetime, end: datetime, period_start: datetime, period_end: datetime) -> Decimal:
    """`fee` for [start, end) of the period [period_start, period_end), to the second."""
    return cents(Fraction(D(fee)) * secs(start, end) / secs(period_start, period_end))


def percent_of(amount: Decimal, percent: str) -> Decimal:
    return cents(Fraction(amount) * Fraction(D(percent)) / 100)


@dataclass(frozen=True)
class Line:
    kind: str
    description: str
    amount: Decimal
    start: datetime
    end: datetime


@dataclass
class Inv:
    point: datetime
    lines: list[Line]
    bug: str = ""  # a known defect of the system on this invoice: asserted as xfail(strict=True)
    # filled in by the oracle
    rate: Decimal = ZERO
    taxed: list[tuple] = field(default_factory=list)
    subtotal: Decimal = ZERO
    tax_total: Decimal = ZERO
    total: Decimal = ZERO
    finalized_at: datetime | None = None
    number: str = ""
    credits_applied: Decimal = ZERO
    amount_due: Decimal = ZERO
    status: str = ""


def fee(description: str, amount: Decimal | str, start: datetime, end: datetime) -> Line:
    return Line("base_fee", description, D(amount), start, end)


def usage(description: str, amount: str, start: datetime, end: datetime) -> Line:
    return Line("usage", description, D(amount), start, end)


def credit(description: str, amount: Decimal, start: datetime, end: datetime) -> Line:
    return Line("base_fee_credit", description, -amount, start, end)


def discount(parent: Line, description: str, off: Decimal) -> Line:
    return Line("discount", description, -off, parent.start, parent.end)


def taxed_lines(lines: list[Line], rate: Decimal) -> list[tuple]:
    """(kind, description, amount, tax, rate, start, end) per line: tax on each line net of the
    discount lines that follow it, half-up; discount lines carry the rate and no tax."""
    out = []
    for index, line in enumerate(lines):
        if line.kind == "discount":
            out.append((line.kind, line.description, line.amount, D("0.00"), rate, line.start, line.end))
            continue
        net = line.amount
        for following in lines[index + 1 :]:
            if following.kind != "discount":
                break
            net += following.amount
        tax = cents(Fraction(net) * Fraction(rate) / 100)
        out.append((line.kind, line.description, line.amount, tax, rate, line.start, line.end))
    return out


@dataclass
class Grant:
    amount: Decimal
    created_at: datetime
    expires_at: datetime | None
    seq: int
    used: Decimal = ZERO


@dataclass
class Scenario:
    key: str
    rate: Decimal
    invoices: list[Inv]
    final_status: str
    grants: list[Grant] = field(default_factory=list)  # explicit grants (purchased, promotional)
    sub_order: int = 0  # position in creation order (subscription ids are in that order)
    balance: Decimal = ZERO


def finalize_instant(point: datetime) -> datetime:
    """The first billing run at or after the end of the grace period."""
    return next(run for run in RUNS if run >= point + GRACE)


def oracle(scenarios: list[Scenario]) -> None:
    """Taxes and totals per invoice; then, in finalization order (per run: a subscription's drafts
    one round at a time, subscriptions in id order), gap-free numbers and the credit ledger."""
    for sc in scenarios:
        for inv in sc.invoices:
            inv.rate = sc.rate
            inv.taxed = taxed_lines(inv.lines, sc.rate)
            inv.subtotal = sum((line[2] for line in inv.taxed), D("0.00"))
            inv.tax_total = sum((line[3] for line in inv.taxed), D("0.00"))
            inv.total = inv.subtotal + inv.tax_total
            inv.finalized_at = finalize_instant(inv.point)
    order = []
    for sc in scenarios:
        by_run: dict[datetime, int] = {}
        for inv in sorted(sc.invoices, key=lambda i: i.point):
            rank = by_run.setdefault(inv.finalized_at, 0)
            by_run[inv.finalized_at] += 1
            order.append((inv.finalized_at, rank, sc.sub_order, sc, inv))
    seq = itertools.count(1000)
    ledgers = {sc.key: list(sc.grants) for sc in scenarios}
    for number, (at, _, _, sc, inv) in enumerate(sorted(order, key=lambda o: o[:3]), start=1):
        inv.number = f"INV-{number:06d}"
        if inv.total < 0:
            ledgers[sc.key].append(Grant(-inv.total, at, None, next(seq)))
            inv.amount_due = D("0.00")
        else:
            usable = sorted(
                (
                    g
                    for g in ledgers[sc.key]
                    if g.created_at <= at and (g.expires_at is None or g.expires_at > at) and g.amount > g.used
                ),
                key=lambda g: (g.expires_at is None, g.expires_at or at, g.created_at, g.seq),
            )
            left = inv.total
            for g in usable:
                take = min(left, g.amount - g.used)
                g.used += take
                left -= take
            inv.credits_applied = inv.total - left
            inv.amount_due = left
        inv.status = "paid" if inv.amount_due == 0 else "open"
    for sc in scenarios:
        sc.balance = sum(
            (g.amount - g.used for g in ledgers[sc.key] if g.expires_at is None or g.expires_at > LAST_RUN),
            D("0.00"),
        )


# ---------------------------------------------------------------------------------------------
# The world and the timeline
# ---------------------------------------------------------------------------------------------


class Timeline:
    """Actions at instants; billing runs at RUNS. At one instant, actions come before the run."""

    def __init__(self) -> None:
        self.items: list[tuple[datetime, int, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        self.orgs: dict[str, object] = {}
        self.subs: dict[str, Subscription] = {}
        self.created: list[str] = []
        self.previews: dict[str, tuple[datetime, list[tuple]]] = {}  # changes that took effect at once
        for run in RUNS:
            self.at(run, lambda run=run: billing_run(at=run), order=1)

    def at(self, instant: datetime, action: Callable[[], None], *, order: int = 0) -> None:
        self.items.append((instant, order, next(self.seq), action))

    def play(self) -> None:
        self.items.sort(key=lambda item: item[:3])
        with time_machine.travel(self.items[0][0], tick=False) as traveller:
            for instant, _, _, action in self.items:
                traveller.move_to(instant)
                action()

    # the scenario's verbs -------------------------------------------------------------------

    def subscribe(self, key: str, plan: str, start: datetime, *, mode: str = "calendar") -> None:
        def act() -> None:
            version = PlanVersion.objects.get(plan__code=plan)
            self.subs[key] = subscription_create(
                actor=None, organization=self.orgs[key], plan_version=version, start_at=start, billing_mode=mode
            )
            self.created.append(key)

        self.at(start, act)

    def change(self, key: str, plan: str, at: datetime, *, timing: str | None = None) -> None:
        def act() -> None:
            sub = Subscription.objects.get(pk=self.subs[key].pk)
            version = PlanVersion.objects.get(plan__code=plan)
            change = subscription_change_plan(actor=None, subscription=sub, plan_version=version, timing=timing, at=at)
            self.record(key, at, change)

        self.at(at, act)

    def cancel(self, key: str, at: datetime, *, at_period_end: bool = True) -> None:
        def act() -> None:
            sub = Subscription.objects.get(pk=self.subs[key].pk)
            self.record(key, at, subscription_cancel(actor=None, subscription=sub, at_period_end=at_period_end, at=at))

        self.at(at, act)

    def record(self, key: str, at: datetime, change) -> None:
        if change.effective_at == at:
            lines = [
                (line.kind, line.description, line.amount.amount, line.period_start, line.period_end)
                for line in change.bill.lines
            ]
            self.previews[key] = (at, lines)

    def resume(self, key: str, at: datetime) -> None:
        self.at(at, lambda: subscription_resume(actor=None, subscription=self.subs[key], at=at))

    def redeem(self, key: str, code: str, at: datetime) -> None:
        self.at(
            at,
            lambda: coupon_redeem(actor=None, coupon=Coupon.objects.get(code=code), organization=self.orgs[key], at=at),
        )

    def grant(self, key: str, at: datetime, amount: str, kind: str, expires_at: datetime | None = None) -> None:
        def act() -> None:
            org = self.orgs[key]
            credit_grant(
                actor=None, organization=org, amount=D(amount), currency=org.currency, kind=kind, expires_at=expires_at
            )

        self.at(at, act)

    def events(
        self,
        key: str,
        event_type: str,
        first: datetime,
        count: int,
        *,
        arrive: datetime | None = None,
        properties: bytes = b"{}",
        step: timedelta = timedelta(seconds=10),
    ) -> None:
        """`count` events from `first`, one every `step`, sent (and drained) at `arrive` (by default
        just after the last one happened)."""
        stamps = [first + i * step for i in range(count)]
        arrive = arrive or stamps[-1] + timedelta(minutes=1)
        prefix = f"{key}-{event_type}-{first.isoformat()}"

        def act() -> None:
            rows = [
                (f"{prefix}-{i}", self.orgs[key].external_id, event_type, ts, msgspec.Raw(properties))
                for i, ts in enumerate(stamps)
            ]
            landing_store(events=rows, received_at=datetime.now(UTC))
            assert drain_once(max_events=100_000).inserted == count

        self.at(arrive, act)


def world() -> None:
    InvoicingSettings.objects.update_or_create(
        pk=1,
        defaults={"seller_country": "DE", "tax_registrations": ["DE", "EU-OSS", "US-NY"], "seller_name": "Seller GmbH"},
    )
    MeterFactory()
    meter_create(actor=None, code="emails", name="Emails", event_type="email_sent", aggregation="count")
    meter_create(
        actor=None, code="payments", name="Payments", event_type="payment", aggregation="sum", value_property="amount"
    )

    def plan(code, name, interval="month", currency="EUR", **version):
        plan_create(
            actor=None, code=code, name=name, currency=currency, interval=interval, version=VersionInput(**version)
        )

    def tier(up_to, unit, flat="0"):
        return {"up_to": up_to, "unit_amount": unit, "flat_amount": flat}

    graduated = {"model": "graduated", "tiers": [tier("100", "0"), tier("1000", "0.02", "1.00"), tier(None, "0.01")]}
    volume = {"model": "volume", "tiers": [tier("500", "0.05"), tier(None, "0.04", "3.00")]}
    plan("starter", "Starter", base_fee="30.00", charges=[ChargeInput(meter="calls", price=graduated)])
    plan("pro", "Pro", base_fee="90.00", charges=[ChargeInput(meter="calls", price=volume)])
    per_unit = {"model": "per_unit", "unit_amount": "0.002"}
    plan("small", "Small", base_fee="20.00", charges=[ChargeInput(meter="calls", price=per_unit)])
    plan("annual", "Annual", interval="year", base_fee="1200.00")
    plan("anchor", "Anchor", base_fee="25.00")
    cent = {"model": "per_unit", "unit_amount": "0.01"}
    plan(
        "quarterly",
        "Quarterly",
        interval="quarter",
        base_fee="150.00",
        charges=[ChargeInput(meter="calls", price=cent)],
    )
    package = {"model": "package", "package_size": "1000", "package_amount": "2.00", "free_units": "500"}
    plan("trial", "Trial plan", base_fee="49.00", trial_days=14, charges=[ChargeInput(meter="emails", price=package)])
    share = {"model": "percentage", "rate": "2.5", "fixed_amount": "0.30"}
    plan(
        "commit",
        "Commit plan",
        base_fee="10.00",
        minimum_commitment="100.00",
        charges=[ChargeInput(meter="payments", price=share)],
    )
    plan("us", "US plan", currency="USD", base_fee="50.00", charges=[ChargeInput(meter="calls", price=cent)])
    coupon_create(
        actor=None,
        code="SPRING20",
        name="Spring 20%",
        discount_type="percentage",
        percent_off="20",
        duration="repeating",
        duration_periods=3,
    )
    coupon_create(
        actor=None,
        code="WELCOME50",
        name="Welcome 50 EUR",
        discount_type="fixed",
        amount_off="50.00",
        currency="EUR",
        duration="once",
    )


def org(tl: Timeline, key: str, *, currency="EUR", timezone="UTC", country="DE", region="", tax_id="") -> None:
    tl.orgs[key] = OrganizationFactory(
        external_id=key,
        name=f"Customer {key}",
        currency=currency,
        timezone=timezone,
        country=country,
        region=region,
        tax_id=tax_id,
    )


VAT_DE, REVERSE_CHARGE, NY_SALES_TAX = D("19"), D("0"), D("4")
REASONS = {  # the documented mention on each taxed line, by rate (New York's text is not documented)
    VAT_DE: "VAT at the standard rate of DE",
    REVERSE_CHARGE: (
        "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council Directive 2006/112/EC)"
    ),
}


# ---------------------------------------------------------------------------------------------
# The customers: each one's actions on the timeline and the invoices it must get
# ---------------------------------------------------------------------------------------------


def berlin(tl: Timeline) -> Scenario:
    """Monthly calendar plan in Europe/Berlin: graduated usage, a late event after finalization (a
    correction on the next invoice), an upgrade to a volume-priced plan on 2028-03-15 12:00 local,
    i.e. across the spring DST change (March has 31 days minus one hour), a late event inside the
    grace period of the April draft, then the autumn DST change on 2028-10-29 inside October."""
    key = "berlin"
    org(tl, key, timezone=BERLIN)

    def m(month: int, year: int = 2028) -> datetime:  # local midnight on the 1st
        return t(year + (month - 1) // 12, (month - 1) % 12 + 1, 1, tz=BERLIN)

    upgrade = t(2028, 3, 15, 12, tz=BERLIN)  # 11:00 UTC
    tl.subscribe(key, "starter", m(1))  # 2027-12-31 23:00 UTC
    tl.events(key, "api_call", t(2028, 1, 10, tz=BERLIN), 250)
    tl.events(key, "api_call", t(2028, 2, 10, tz=BERLIN), 1200)
    # after the March 1st invoice was finalized (2028-03-02 00:00 UTC): a correction
    tl.events(key, "api_call", t(2028, 2, 20, tz=BERLIN), 50, arrive=t(2028, 3, 5, 10))
    tl.events(key, "api_call", t(2028, 3, 5, tz=BERLIN), 300)
    tl.change(key, "pro", upgrade)
    tl.events(key, "api_call", t(2028, 3, 20, tz=BERLIN), 700)
    # 23:30 local on March 31st, received after the bill point, inside the grace period
    tl.events(key, "api_call", t(2028, 3, 31, 23, 30, tz=BERLIN), 1, arrive=t(2028, 4, 1, 6))
    for month in range(4, 13):
        tl.events(key, "api_call", t(2028, month, 10, tz=BERLIN), 400)

    march = (m(3), m(4))
    assert secs(*march) == 31 * 86400 - 3600  # the spring-forward hour
    invoices = [
        Inv(m(1), [fee("Starter base fee", "30.00", m(1), m(2))]),
        # 250 calls: 100 free + 150 x 0.02 + 1.00 flat of tier 2 = 4.00
        Inv(m(2), [usage("API calls", "4.00", m(1), m(2)), fee("Starter base fee", "30.00", m(2), m(3))]),
        # 1200 calls: 100 free + 900 x 0.02 + 1.00 + 200 x 0.01 = 21.00
        Inv(m(3), [usage("API calls", "21.00", m(2), m(3)), fee("Starter base fee", "30.00", m(3), m(4))]),
        Inv(
            upgrade,
            [
                # 300 calls: 100 free + 200 x 0.02 + 1.00 = 5.00
                usage("API calls", "5.00", m(3), upgrade),
                # 1250 calls now price at 21.50: 0.50 more than billed, for 50 calls
                Line("correction", "API calls: late usage, 2028-02-01 to 2028-03-01", D("0.50"), m(2), m(3)),
                # 16.5 days minus the DST hour of 31 days minus that hour:
                # 30 x 1422000 / 2674800 = 15.9488... and 90 x the same = 47.8465...
                credit(
                    "Unused time on Starter after 2028-03-15", prorated("30.00", upgrade, m(4), *march), upgrade, m(4)
                ),
                fee("Remaining time on Pro after 2028-03-15", prorated("90.00", upgrade, m(4), *march), upgrade, m(4)),
            ],
        ),
        # 700 calls + 1 late inside the grace period: volume tier 2, 701 x 0.04 + 3.00 = 31.04
        Inv(m(4), [usage("API calls", "31.04", upgrade, m(4)), fee("Pro base fee", "90.00", m(4), m(5))]),
    ]
    for month in range(5, 14):
        # 400 calls, volume tier 1: 400 x 0.05 = 20.00
        lines = [
            usage("API calls", "20.00", m(month - 1), m(month)),
            fee("Pro base fee", "90.00", m(month), m(month + 1)),
        ]
        invoices.append(Inv(m(month), lines))
    assert invoices[1].lines[1].amount == D("30.00") and invoices[3].lines[2].amount == D("-15.95")
    assert invoices[3].lines[3].amount == D("47.85")
    return Scenario(key, VAT_DE, invoices, "active")


def yearly(tl: Timeline) -> Scenario:
    """A yearly anniversary plan started on 2028-02-10: one invoice for the whole (leap) year."""
    key = "yearly"
    org(tl, key)
    start, end = t(2028, 2, 10, 10), t(2029, 2, 10, 10)
    tl.subscribe(key, "annual", start, mode="anniversary")
    return Scenario(key, VAT_DE, [Inv(start, [fee("Annual base fee", "1200.00", start, end)])], "active")


def to_yearly(tl: Timeline) -> Scenario:
    """Monthly anniversary (the 20th, 09:00) then an upgrade to the yearly plan on April 5th: the
    yearly period continues from the same anchor, [2028-01-20, 2029-01-20), 366 days."""
    key = "to-yearly"
    org(tl, key)
    a = [t(2028, month, 20, 9) for month in range(1, 5)]
    change, year_end = t(2028, 4, 5, 12), t(2029, 1, 20, 9)
    tl.subscribe(key, "small", a[0], mode="anniversary")
    tl.events(key, "api_call", t(2028, 1, 25), 500)
    tl.change(key, "annual", change)
    assert secs(a[0], year_end) == 366 * 86400
    return Scenario(
        key,
        VAT_DE,
        [
            Inv(a[0], [fee("Small base fee", "20.00", a[0], a[1])]),
            # 500 x 0.002 = 1.00
            Inv(a[1], [usage("API calls", "1.00", a[0], a[1]), fee("Small base fee", "20.00", a[1], a[2])]),
            Inv(a[2], [usage("API calls", "0.00", a[1], a[2]), fee("Small base fee", "20.00", a[2], a[3])]),
            Inv(
                change,
                [
                    usage("API calls", "0.00", a[2], change),
                    # 20 x (14 d 21 h) / 31 d = 9.5967... ; 1200 x (289 d 21 h) / 366 d = 950.4098...
                    credit(
                        "Unused time on Small after 2028-04-05",
                        prorated("20.00", change, a[3], a[2], a[3]),
                        change,
                        a[3],
                    ),
                    fee(
                        "Remaining time on Annual after 2028-04-05",
                        prorated("1200.00", change, year_end, a[0], year_end),
                        change,
                        year_end,
                    ),
                ],
            ),
        ],
        "active",
    )


def trial(tl: Timeline) -> Scenario:
    """A 14-day trial from 2028-05-10 (calendar billing): the trial's usage is free, the fee for the
    rest of May is billed at the trial's end; package pricing; canceled at the end of June."""
    key = "trial"
    org(tl, key)
    start, trial_end = t(2028, 5, 10), t(2028, 5, 24)
    may, jun, jul = t(2028, 5, 1), t(2028, 6, 1), t(2028, 7, 1)
    tl.subscribe(key, "trial", start)
    tl.events(key, "email_sent", t(2028, 5, 15), 3000)  # during the trial: free
    tl.events(key, "email_sent", t(2028, 5, 28), 1700)
    tl.events(key, "email_sent", t(2028, 6, 10), 2400)
    tl.cancel(key, t(2028, 6, 15, 12))
    return Scenario(
        key,
        VAT_DE,
        [
            # nothing is due at the start (the fee waits for the trial's end): no invoice
            # 49 x 8 / 31 = 12.645...
            Inv(
                trial_end,
                [fee("Trial plan base fee (prorated)", prorated("49.00", trial_end, jun, may, jun), trial_end, jun)],
            ),
            # 1700 emails: 500 free, 1200 start 2 packages of 1000 at 2.00
            Inv(jun, [usage("Emails", "4.00", trial_end, jun), fee("Trial plan base fee", "49.00", jun, jul)]),
            # 2400 emails: 500 free, 1900 start 2 packages
            Inv(jul, [usage("Emails", "4.00", jun, jul)]),
        ],
        "canceled",
    )


def downgrade_at_period_end(tl: Timeline) -> Scenario:
    """Pro, downgraded to Small on Feb 10th (takes effect on March 1st), canceled at period end."""
    key = "down-end"
    org(tl, key)
    m = [t(2028, month, 1) for month in range(1, 6)]
    tl.subscribe(key, "pro", m[0])
    tl.events(key, "api_call", t(2028, 1, 10), 300)
    # periods are half-open: the last second of January counts in January (it arrives after the
    # bill point, inside the grace period), the first second of February in February
    tl.events(key, "api_call", m[1] - timedelta(seconds=1), 1)
    tl.events(key, "api_call", m[1], 1)
    tl.events(key, "api_call", t(2028, 2, 10), 600)
    tl.change(key, "small", t(2028, 2, 10, 12))
    tl.events(key, "api_call", t(2028, 3, 10), 1000)
    tl.events(key, "api_call", t(2028, 4, 10), 250)
    tl.cancel(key, t(2028, 4, 10, 12))
    return Scenario(
        key,
        VAT_DE,
        [
            Inv(m[0], [fee("Pro base fee", "90.00", m[0], m[1])]),
            # 301 x 0.05 = 15.05
            Inv(m[1], [usage("API calls", "15.05", m[0], m[1]), fee("Pro base fee", "90.00", m[1], m[2])]),
            # 601 > 500: 601 x 0.04 + 3.00 = 27.04 under Pro; then Small from March 1st
            Inv(m[2], [usage("API calls", "27.04", m[1], m[2]), fee("Small base fee", "20.00", m[2], m[3])]),
            # 1000 x 0.002 = 2.00
            Inv(m[3], [usage("API calls", "2.00", m[2], m[3]), fee("Small base fee", "20.00", m[3], m[4])]),
            # 250 x 0.002 = 0.50; ended: no fee in advance
            Inv(m[4], [usage("API calls", "0.50", m[3], m[4])]),
        ],
        "canceled",
    )


def downgrade_now(tl: Timeline) -> Scenario:
    """Pro from May 1st, downgraded at once on June 10th 12:00: the credit for unused Pro time is
    larger than the charges, the invoice is negative and becomes credit, used by the next ones."""
    key = "down-now"
    org(tl, key)
    m = [t(2028, month, 1) for month in range(5, 10)]
    change = t(2028, 6, 10, 12)
    tl.subscribe(key, "pro", m[0])
    tl.events(key, "api_call", t(2028, 5, 10), 100)
    tl.events(key, "api_call", t(2028, 6, 5), 200)
    tl.change(key, "small", change, timing="now")
    tl.events(key, "api_call", t(2028, 6, 20), 1500)
    tl.cancel(key, t(2028, 8, 15))
    return Scenario(
        key,
        VAT_DE,
        [
            Inv(m[0], [fee("Pro base fee", "90.00", m[0], m[1])]),
            Inv(m[1], [usage("API calls", "5.00", m[0], m[1]), fee("Pro base fee", "90.00", m[1], m[2])]),
            Inv(
                change,
                [
                    usage("API calls", "10.00", m[1], change),  # 200 x 0.05
                    # 20.5 of 30 days: 90 x 20.5 / 30 = 61.50 and 20 x 20.5 / 30 = 13.666...
                    credit(
                        "Unused time on Pro after 2028-06-10", prorated("90.00", change, m[2], m[1], m[2]), change, m[2]
                    ),
                    fee(
                        "Remaining time on Small after 2028-06-10",
                        prorated("20.00", change, m[2], m[1], m[2]),
                        change,
                        m[2],
                    ),
                ],
            ),
            # 1500 x 0.002 = 3.00
            Inv(m[2], [usage("API calls", "3.00", change, m[2]), fee("Small base fee", "20.00", m[2], m[3])]),
            Inv(m[3], [usage("API calls", "0.00", m[2], m[3]), fee("Small base fee", "20.00", m[3], m[4])]),
            # canceled at period end: the last invoice holds one zero usage line
            Inv(m[4], [usage("API calls", "0.00", m[3], m[4])]),
        ],
        "canceled",
    )


def resume(tl: Timeline) -> Scenario:
    """Canceled at period end on April 10th, resumed on April 20th (it renews on May 1st), canceled
    at period end again in June."""
    key = "resume"
    org(tl, key)
    m = [t(2028, month, 1) for month in range(2, 8)]
    tl.subscribe(key, "small", m[0])
    tl.events(key, "api_call", t(2028, 2, 10), 500)
    tl.cancel(key, t(2028, 4, 10))
    tl.resume(key, t(2028, 4, 20))
    tl.cancel(key, t(2028, 6, 5))
    invoices = [Inv(m[0], [fee("Small base fee", "20.00", m[0], m[1])])]
    for i in range(1, 5):
        amount = "1.00" if i == 1 else "0.00"  # 500 x 0.002
        invoices.append(
            Inv(m[i], [usage("API calls", amount, m[i - 1], m[i]), fee("Small base fee", "20.00", m[i], m[i + 1])])
        )
    invoices.append(Inv(m[5], [usage("API calls", "0.00", m[4], m[5])]))
    return Scenario(key, VAT_DE, invoices, "canceled")


def cancel_now(tl: Timeline) -> Scenario:
    """Pro from July 1st, canceled at once on August 20th 06:00: the unused fee comes back as a
    credit line; the final invoice is negative and stays on the balance."""
    key = "cancel-now"
    org(tl, key)
    jul, aug, sep = t(2028, 7, 1), t(2028, 8, 1), t(2028, 9, 1)
    end = t(2028, 8, 20, 6)
    tl.subscribe(key, "pro", jul)
    tl.events(key, "api_call", t(2028, 7, 10), 450)
    tl.events(key, "api_call", t(2028, 8, 5), 100)
    tl.cancel(key, end, at_period_end=False)
    return Scenario(
        key,
        VAT_DE,
        [
            Inv(jul, [fee("Pro base fee", "90.00", jul, aug)]),
            # 450 x 0.05 = 22.50
            Inv(aug, [usage("API calls", "22.50", jul, aug), fee("Pro base fee", "90.00", aug, sep)]),
            # 100 x 0.05 = 5.00; 90 x 11.75 / 31 = 34.1129...
            Inv(
                end,
                [
                    usage("API calls", "5.00", aug, end),
                    credit("Unused time on Pro after 2028-08-20", prorated("90.00", end, sep, aug, sep), end, sep),
                ],
            ),
        ],
        "canceled",
    )


def anchored(day: int, months_days: list[int]) -> Callable[[Timeline], Scenario]:
    """Monthly anniversary billing from January `day` 10:00 UTC: the bill day clamps to the month's
    length (Feb 29 in 2028) and comes back to the anchor day after a short month."""

    def scenario(tl: Timeline) -> Scenario:
        key = f"anchor-{day}"
        org(tl, key)
        points = [t(2028, month, d, 10) for month, d in enumerate(months_days, start=1)] + [t(2029, 1, day, 10)]
        tl.subscribe(key, "anchor", points[0], mode="anniversary")
        invoices = [Inv(p, [fee("Anchor base fee", "25.00", p, q)]) for p, q in itertools.pairwise(points)]
        return Scenario(key, VAT_DE, invoices, "active")

    return scenario


def percentage_coupon(tl: Timeline) -> Scenario:
    """20 % off for 3 periods, redeemed on March 10th: it covers the lines whose billing period is
    March, April or May (March's fee was billed before it and is not discounted; March's usage,
    billed on April 1st, is). An upgrade on April 15th inside the covered periods: the credit for
    unused time gives back what was billed of the discounted charge, and is not discounted again."""
    key = "pct-coupon"
    org(tl, key)
    m = [t(2028, month, 1) for month in range(2, 7)]
    change = t(2028, 4, 15)
    name = "Spring 20% (SPRING20)"
    tl.subscribe(key, "small", m[0])
    tl.events(key, "api_call", t(2028, 2, 10), 1000)
    tl.events(key, "api_call", t(2028, 3, 5), 2000)
    tl.redeem(key, "SPRING20", t(2028, 3, 10))
    tl.events(key, "api_call", t(2028, 4, 5), 500)
    tl.change(key, "pro", change)
    tl.events(key, "api_call", t(2028, 4, 20), 300)
    tl.events(key, "api_call", t(2028, 5, 10), 200)
    tl.cancel(key, t(2028, 5, 20))

    def off(line: Line) -> list[Line]:
        return [line, discount(line, name, percent_of(line.amount, "20"))]

    april = (m[2], m[3])
    return Scenario(
        key,
        VAT_DE,
        [
            Inv(m[0], [fee("Small base fee", "20.00", m[0], m[1])]),
            Inv(m[1], [usage("API calls", "2.00", m[0], m[1]), fee("Small base fee", "20.00", m[1], m[2])]),
            # 2000 x 0.002 = 4.00, 20 % off 0.80; 20.00, 20 % off 4.00
            Inv(m[2], [*off(usage("API calls", "4.00", m[1], m[2])), *off(fee("Small base fee", "20.00", m[2], m[3]))]),
            Inv(
                change,
                [
                    *off(usage("API calls", "1.00", m[2], change)),  # 500 x 0.002
                    # of the 16.00 billed (20.00 less 20 %): 16 x 16/30 = 8.533... -> -8.53
                    credit(
                        "Unused time on Small after 2028-04-15", prorated("16.00", change, m[3], *april), change, m[3]
                    ),
                    # 90 x 16/30 = 48.00, 20 % off 9.60
                    *off(
                        fee(
                            "Remaining time on Pro after 2028-04-15",
                            prorated("90.00", change, m[3], *april),
                            change,
                            m[3],
                        )
                    ),
                ],
            ),
            # 300 x 0.05 = 15.00 (April, covered), May's fee covered too
            Inv(
                m[3], [*off(usage("API calls", "15.00", change, m[3])), *off(fee("Pro base fee", "90.00", m[3], m[4]))]
            ),
            # 200 x 0.05 = 10.00 for May: still covered, although billed in June
            Inv(m[4], off(usage("API calls", "10.00", m[3], m[4]))),
        ],
        "canceled",
    )


def fixed_coupon(tl: Timeline) -> Scenario:
    """50 EUR off once, redeemed on July 5th (covers July's billing period), then an upgrade on July
    20th: the discount takes the July usage and the Pro fee for the rest of July on the upgrade
    invoice (never a line below zero, never the credit line), the rest goes to July's usage billed
    on August 1st (a later bill point of July), and August's fee is not discounted. What is left
    when July is over is forfeited: late July usage billed in September is not discounted."""
    key = "fixed-coupon"
    org(tl, key)
    jun, jul, aug, sep = (t(2028, month, 1) for month in range(6, 10))
    change = t(2028, 7, 20)
    name = "Welcome 50 EUR (WELCOME50)"
    tl.subscribe(key, "small", jun)
    tl.events(key, "api_call", t(2028, 6, 10), 500)
    tl.redeem(key, "WELCOME50", t(2028, 7, 5))
    tl.events(key, "api_call", t(2028, 7, 10), 1500)
    tl.change(key, "pro", change)
    tl.events(key, "api_call", t(2028, 7, 25), 100)
    # after the August 1st invoice was finalized (August 2nd): a correction on September 1st
    tl.events(key, "api_call", t(2028, 7, 28), 20, arrive=t(2028, 8, 10))
    tl.events(key, "api_call", t(2028, 8, 5), 100)
    tl.cancel(key, t(2028, 8, 10, 12))
    used = usage("API calls", "3.00", jul, change)  # 1500 x 0.002
    pro_rest = fee("Remaining time on Pro after 2028-07-20", prorated("90.00", change, aug, jul, aug), change, aug)
    assert pro_rest.amount == D("34.84")  # 90 x 12 / 31 = 34.838...
    late_july = usage("API calls", "5.00", change, aug)  # 100 x 0.05
    # 50.00 - 3.00 - 34.84 - 5.00 = 7.16 left when July is over: forfeited
    return Scenario(
        key,
        VAT_DE,
        [
            Inv(jun, [fee("Small base fee", "20.00", jun, jul)]),
            Inv(jul, [usage("API calls", "1.00", jun, jul), fee("Small base fee", "20.00", jul, aug)]),
            Inv(
                change,
                [
                    used,
                    discount(used, name, used.amount),
                    # 20 x 12 / 31 = 7.741... ; a fixed coupon does not add to a credit
                    credit(
                        "Unused time on Small after 2028-07-20", prorated("20.00", change, aug, jul, aug), change, aug
                    ),
                    pro_rest,
                    discount(pro_rest, name, pro_rest.amount),
                ],
            ),
            Inv(aug, [late_july, discount(late_july, name, late_july.amount), fee("Pro base fee", "90.00", aug, sep)]),
            Inv(
                sep,
                [
                    usage("API calls", "5.00", aug, sep),  # 100 x 0.05, August: not covered
                    # 120 calls now: 6.00, 1.00 more than billed; no discount, July is over
                    Line("correction", "API calls: late usage, 2028-07-20 to 2028-08-01", D("1.00"), change, aug),
                ],
            ),
        ],
        "canceled",
    )


def credits(tl: Timeline) -> Scenario:
    """Promotional grants with expiries and a purchased one, all granted on February 15th: used
    after tax, soonest-expiring first, purchased (no expiry) last; a grant that expires before it
    is used, and what is left of one at its expiry, are lost."""
    key = "credits"
    org(tl, key)
    m = [t(2028, month, 1) for month in range(1, 8)]
    granted = t(2028, 2, 15, 10)
    tl.subscribe(key, "small", m[0])
    tl.events(key, "api_call", t(2028, 2, 5), 1000)
    grants = [
        ("30.00", CreditKind.PROMOTIONAL, t(2028, 3, 20)),
        ("10.00", CreditKind.PROMOTIONAL, t(2028, 12, 31)),
        ("100.00", CreditKind.PURCHASE, None),
        ("5.00", CreditKind.PROMOTIONAL, t(2028, 2, 20)),
    ]
    for amount, kind, expires_at in grants:
        tl.grant(key, granted, amount, kind, expires_at)
    tl.cancel(key, t(2028, 6, 5))
    invoices = [Inv(m[0], [fee("Small base fee", "20.00", m[0], m[1])])]
    for i in range(1, 6):
        amount = "2.00" if i == 2 else "0.00"  # 1000 x 0.002 in February
        invoices.append(
            Inv(m[i], [usage("API calls", amount, m[i - 1], m[i]), fee("Small base fee", "20.00", m[i], m[i + 1])])
        )
    invoices.append(Inv(m[6], [usage("API calls", "0.00", m[5], m[6])]))
    ledger = [Grant(D(a), granted, e, seq) for seq, (a, _, e) in enumerate(grants)]
    return Scenario(key, VAT_DE, invoices, "canceled", grants=ledger)


def reverse_charge(tl: Timeline) -> Scenario:
    """A French business with a valid-format VAT number, billed by a German seller: 0 %, reverse
    charge; calendar periods in Europe/Paris; volume pricing across its cliff (500 vs 501)."""
    key = "fr-business"
    org(tl, key, timezone=PARIS, country="FR", tax_id="FR40303265045")
    m = [t(2028, month, 1, tz=PARIS) for month in range(9, 13)] + [t(2029, 1, 1, tz=PARIS), t(2029, 2, 1, tz=PARIS)]
    tl.subscribe(key, "pro", m[0])
    counts = [800, 450, 500, 501]
    for month, count in zip(range(9, 13), counts, strict=True):
        tl.events(key, "api_call", t(2028, month, 10, tz=PARIS), count)
    # 800 x 0.04 + 3.00 = 35.00; 450 x 0.05 = 22.50; 500 x 0.05 = 25.00 (up_to is inclusive);
    # 501 x 0.04 + 3.00 = 23.04 (every unit re-priced past the bound)
    amounts = ["35.00", "22.50", "25.00", "23.04"]
    invoices = [Inv(m[0], [fee("Pro base fee", "90.00", m[0], m[1])])]
    for i, amount in enumerate(amounts, start=1):
        invoices.append(
            Inv(m[i], [usage("API calls", amount, m[i - 1], m[i]), fee("Pro base fee", "90.00", m[i], m[i + 1])])
        )
    return Scenario(key, REVERSE_CHARGE, invoices, "active")


def new_york(tl: Timeline) -> Scenario:
    """A New York customer on a USD plan: 4 % state sales tax (the seller has nexus there), calendar
    periods in America/New_York (DST from 2028-03-12), and late events for March arriving after
    its invoice was finalized: a correction on the May 1st invoice."""
    key = "ny"
    org(tl, key, currency="USD", timezone=NEW_YORK, country="US", region="NY")
    m = [t(2028, month, 1, tz=NEW_YORK) for month in range(3, 8)]
    tl.subscribe(key, "us", m[0])
    tl.events(key, "api_call", t(2028, 3, 10, tz=NEW_YORK), 1234)
    tl.events(key, "api_call", t(2028, 3, 20, 12, tz=NEW_YORK), 10, arrive=t(2028, 4, 10, 12))
    tl.events(key, "api_call", t(2028, 5, 10, tz=NEW_YORK), 300)
    tl.cancel(key, t(2028, 6, 10))
    assert secs(m[0], m[1]) == 31 * 86400 - 3600
    return Scenario(
        key,
        NY_SALES_TAX,
        [
            Inv(m[0], [fee("US plan base fee", "50.00", m[0], m[1])]),
            # 1234 x 0.01 = 12.34 (tax 0.4936 -> 0.49)
            Inv(m[1], [usage("API calls", "12.34", m[0], m[1]), fee("US plan base fee", "50.00", m[1], m[2])]),
            Inv(
                m[2],
                [
                    usage("API calls", "0.00", m[1], m[2]),
                    # 10 late calls x 0.01 (tax 0.004 -> 0.00)
                    Line("correction", "API calls: late usage, 2028-03-01 to 2028-04-01", D("0.10"), m[0], m[1]),
                    fee("US plan base fee", "50.00", m[2], m[3]),
                ],
            ),
            Inv(m[3], [usage("API calls", "3.00", m[2], m[3]), fee("US plan base fee", "50.00", m[3], m[4])]),
            Inv(m[4], [usage("API calls", "0.00", m[3], m[4])]),
        ],
        "canceled",
    )


def commitment(tl: Timeline) -> Scenario:
    """A 100.00 monthly minimum commitment with a percentage charge (2.5 % + 0.30 per payment),
    started mid-month: the first period's fee and commitment are prorated; the commitment is
    trued up against the usage and the segment's share of the base fee."""
    key = "commit"
    org(tl, key)
    jan, start, feb, mar, apr = t(2028, 1, 1), t(2028, 1, 16), t(2028, 2, 1), t(2028, 3, 1), t(2028, 4, 1)
    tl.subscribe(key, "commit", start)
    payment = b'{"amount": 100}'
    tl.events(key, "payment", t(2028, 1, 20), 4, properties=payment)
    tl.events(key, "payment", t(2028, 2, 10), 50, properties=payment)
    # a January payment after the February 1st invoice was finalized: billed as a correction, and
    # (documented) the commitment it was trued up against is not trued up again
    tl.events(key, "payment", t(2028, 1, 25), 1, properties=payment, arrive=t(2028, 2, 10, 12))
    tl.cancel(key, t(2028, 3, 10))
    first_fee = prorated("10.00", start, feb, jan, feb)  # 10 x 16 / 31 = 5.161... -> 5.16
    first_target = prorated("100.00", start, feb, jan, feb)  # 100 x 16 / 31 = 51.612... -> 51.61
    return Scenario(
        key,
        VAT_DE,
        [
            Inv(start, [fee("Commit plan base fee (prorated)", first_fee, start, feb)]),
            Inv(
                feb,
                [
                    usage("Payments", "11.20", start, feb),  # 4 x (100 x 2.5 % + 0.30)
                    Line(
                        "commitment",
                        "Commit plan: minimum commitment",
                        first_target - D("11.20") - first_fee,  # 51.61 - 11.20 - 5.16 = 35.25
                        start,
                        feb,
                    ),
                    fee("Commit plan base fee", "10.00", feb, mar),
                ],
            ),
            # 50 x 2.80 = 140.00: with the fee above the commitment, no true-up
            Inv(
                mar,
                [
                    usage("Payments", "140.00", feb, mar),
                    Line("correction", "Payments: late usage, 2028-01-16 to 2028-02-01", D("2.80"), start, feb),
                    fee("Commit plan base fee", "10.00", mar, apr),
                ],
            ),
            # no payments: 100.00 - 0.00 - 10.00 of fee = 90.00
            Inv(
                apr,
                [
                    usage("Payments", "0.00", mar, apr),
                    Line("commitment", "Commit plan: minimum commitment", D("90.00"), mar, apr),
                ],
            ),
        ],
        "canceled",
    )


def dst_anchor(tl: Timeline) -> Scenario:
    """Monthly anniversary billing in Europe/Berlin anchored on 2028-01-26 02:30 local: on March
    26th, the spring-forward day, 02:30 does not exist and the period starts at 03:30 CEST (01:30
    UTC, the offset before the gap); April's period is 31 days minus that hour."""
    key = "anchor-dst"
    org(tl, key, timezone=BERLIN)
    points = [t(2028, month, 26, 2, 30, tz=BERLIN) for month in range(1, 13)] + [t(2029, 1, 26, 2, 30, tz=BERLIN)]
    assert points[2] == datetime(2028, 3, 26, 1, 30, tzinfo=UTC) and points[3] == datetime(
        2028, 4, 26, 0, 30, tzinfo=UTC
    )
    assert secs(points[1], points[2]) == 29 * 86400 and secs(points[2], points[3]) == 31 * 86400 - 3600
    tl.subscribe(key, "anchor", points[0], mode="anniversary")
    invoices = [Inv(p, [fee("Anchor base fee", "25.00", p, q)]) for p, q in itertools.pairwise(points)]
    return Scenario(key, VAT_DE, invoices, "active")


def quarterly(tl: Timeline) -> Scenario:
    """A quarterly calendar plan with usage, and late events for the first quarter arriving four
    days after its invoice was finalized: they are due on the next invoice (July 1st), as a
    correction line, like late events of a monthly plan."""
    key = "quarterly"
    org(tl, key)
    q = [t(2028, month, 1) for month in (1, 4, 7, 10)] + [t(2029, 1, 1), t(2029, 4, 1)]
    tl.subscribe(key, "quarterly", q[0])
    tl.events(key, "api_call", t(2028, 2, 10), 1000)
    tl.events(key, "api_call", t(2028, 3, 30), 25, arrive=t(2028, 4, 6))  # finalized on April 2nd
    tl.events(key, "api_call", t(2028, 5, 10), 500)
    tl.events(key, "api_call", t(2028, 8, 10), 200)

    def quarter(i: int, amount: str, *extra: Line, bug: str = "") -> Inv:
        return Inv(
            q[i],
            [usage("API calls", amount, q[i - 1], q[i]), *extra, fee("Quarterly base fee", "150.00", q[i], q[i + 1])],
            bug,
        )

    return Scenario(
        key,
        VAT_DE,
        [
            Inv(q[0], [fee("Quarterly base fee", "150.00", q[0], q[1])]),
            quarter(1, "10.00"),  # 1000 x 0.01
            quarter(
                2,
                "5.00",  # 500 x 0.01
                Line("correction", "API calls: late usage, 2028-01-01 to 2028-04-01", D("0.25"), q[0], q[1]),
            ),
            quarter(3, "2.00"),
            quarter(4, "0.00"),
        ],
        "active",
    )


SCENARIOS: list[Callable[[Timeline], Scenario]] = [
    berlin,
    yearly,
    to_yearly,
    trial,
    downgrade_at_period_end,
    downgrade_now,
    resume,
    cancel_now,
    anchored(29, [29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29]),
    anchored(30, [30, 29, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30]),
    anchored(31, [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]),
    percentage_coupon,
    fixed_coupon,
    credits,
    reverse_charge,
    new_york,
    commitment,
    dst_anchor,
    quarterly,
]
KEYS = [
    "berlin",
    "yearly",
    "to-yearly",
    "trial",
    "down-end",
    "down-now",
    "resume",
    "cancel-now",
    "anchor-29",
    "anchor-30",
    "anchor-31",
    "pct-coupon",
    "fixed-coupon",
    "credits",
    "fr-business",
    "ny",
    "commit",
    "anchor-dst",
    "quarterly",
]


@dataclass
class Year:
    scenarios: dict[str, Scenario]
    subscription_ids: dict[str, int]
    previews: dict[str, tuple[datetime, list[tuple]]]


@pytest.fixture(scope="module")
def year(django_db_setup, django_db_blocker) -> Year:
    """The whole year, simulated once inside a transaction rolled back after the module's tests."""
    from tenants.models import Tenant

    with django_db_blocker.unblock(), transaction.atomic():
        tenant = Tenant.objects.get(slug=TENANT_SLUGS[0])
        with tenant_context(tenant):
            tl = Timeline()
            with time_machine.travel(datetime(2027, 12, 1, tzinfo=UTC), tick=False):
                world()
            scenarios = [make(tl) for make in SCENARIOS]
            tl.play()
            for sc in scenarios:
                sc.sub_order = tl.created.index(sc.key)
            oracle(scenarios)
            subscription_ids = {key: sub.pk for key, sub in tl.subs.items()}
            result = Year({sc.key: sc for sc in scenarios}, subscription_ids, tl.previews)
        connection.set_schema_to_public()
        yield result
        transaction.set_rollback(True)
    connection.set_schema_to_public()


# ---------------------------------------------------------------------------------------------
# The assertions
# ---------------------------------------------------------------------------------------------


def stored_lines(invoice: Invoice) -> list[tuple]:
    return [
        (line.kind, line.description, line.amount, line.tax_amount, line.tax_rate, line.period_start, line.period_end)
        for line in invoice.lines.order_by("position")
    ]


def summary(invoice: Invoice) -> tuple:
    return (
        invoice.bill_point,
        invoice.number,
        invoice.status,
        invoice.issued_at,
        invoice.due_at,
        invoice.period_start,
        invoice.period_end,
        invoice.subtotal,
        invoice.tax_total,
        invoice.total,
        invoice.credits_applied,
        invoice.amount_due,
    )


def own_lines(inv: Inv) -> list:
    return [line for line in inv.lines if line.kind != "correction"] or inv.lines


def expected_summary(inv: Inv) -> tuple:
    return (
        inv.point,
        inv.number,
        inv.status,
        inv.finalized_at,
        inv.finalized_at + TERMS,
        # the invoice's own period: correction lines of earlier windows do not stretch it
        min(line.start for line in own_lines(inv)),
        max(line.end for line in own_lines(inv)),
        inv.subtotal,
        inv.tax_total,
        inv.total,
        inv.credits_applied,
        inv.amount_due,
    )


def check_invoice(invoice: Invoice | None, inv: Inv, key: str) -> None:
    assert invoice is not None, f"{key}: no invoice at {inv.point.isoformat()}"
    where = f"{key} @ {inv.point.isoformat()}"
    assert stored_lines(invoice) == inv.taxed, where
    assert summary(invoice) == expected_summary(inv), where


@pytest.mark.django_db
@pytest.mark.parametrize("key", KEYS)
def test_every_line_of_every_invoice(year: Year, in_a, key):
    sc = year.scenarios[key]
    stored = {i.bill_point: i for i in Invoice.objects.filter(subscription_id=year.subscription_ids[key])}
    assert sorted(stored) == sorted(inv.point for inv in sc.invoices), key
    for inv in sc.invoices:
        if not inv.bug:
            check_invoice(stored.get(inv.point), inv, key)
    # the documented mention on every taxed line (discount lines carry none of their own)
    reasons = {line.tax_reason for i in stored.values() for line in i.lines.exclude(kind="discount")}
    if sc.rate in REASONS:
        assert reasons == {REASONS[sc.rate]}
    subscription = Subscription.objects.get(pk=year.subscription_ids[key])
    assert subscription.status == sc.final_status
    organization = subscription.organization
    assert credit_balance_get(organization=organization, at=LAST_RUN).amount == sc.balance


@pytest.mark.django_db
def test_numbers_are_gap_free_in_finalization_order(year: Year, in_a):
    numbers = sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))
    expected = sorted(inv.number for sc in year.scenarios.values() for inv in sc.invoices)
    assert numbers == expected == [f"INV-{n:06d}" for n in range(1, len(expected) + 1)]
    assert not Invoice.objects.filter(status="draft").exists()
    assert len(expected) == 127
    # and every line of them
    everything = [inv for sc in year.scenarios.values() for inv in sc.invoices]
    assert InvoiceLine.objects.count() == sum(len(inv.lines) for inv in everything) == 204


@pytest.mark.django_db
def test_a_change_at_an_already_billed_bill_point_is_refused(year: Year, in_a):
    """Outside the year (in 2027, so no other subscription is due): with no grace period the run
    finalizes February 1st at once; a change effective at that very second would never be billed,
    so it is refused (nothing written) and the same change a second later is billed."""
    InvoicingSettings.objects.filter(pk=1).update(grace_hours=0)
    jan, feb = t(2027, 1, 1), t(2027, 2, 1)
    customer = OrganizationFactory(external_id="boundary", currency="EUR", country="DE")
    pro = PlanVersion.objects.get(plan__code="pro")
    with time_machine.travel(jan, tick=False):
        sub = subscription_create(
            actor=None, organization=customer, plan_version=PlanVersion.objects.get(plan__code="small"), start_at=jan
        )
        billing_run(at=jan)
    with time_machine.travel(feb, tick=False):
        billing_run(at=feb)
        phases = list(SubscriptionPhase.objects.filter(subscription=sub).values_list("plan_version_id", "ends_at"))
        with pytest.raises(DomainError) as refused:
            subscription_change_plan(
                actor=None, subscription=Subscription.objects.get(pk=sub.pk), plan_version=pro, at=feb
            )
        assert refused.value.code == "change_in_billed_past"
        assert (
            list(SubscriptionPhase.objects.filter(subscription=sub).values_list("plan_version_id", "ends_at")) == phases
        )
    later = feb + timedelta(seconds=1)
    with time_machine.travel(later, tick=False):
        change = subscription_change_plan(
            actor=None, subscription=Subscription.objects.get(pk=sub.pk), plan_version=pro, at=later
        )
        billing_run(at=later)
    billed = Invoice.objects.get(subscription=sub, bill_point=later)
    assert [(x.kind, x.description, x.amount_money) for x in billed.lines.order_by("position")] == [
        (x.kind, x.description, x.amount) for x in change.bill.lines
    ]
    # Small's February (20.00) credited for all but its first second, Pro's charged for the rest
    assert [x.kind for x in change.bill.lines] == ["usage", "base_fee_credit", "base_fee"]


IMMEDIATE_CHANGES = ["berlin", "to-yearly", "down-now", "cancel-now", "pct-coupon", "fixed-coupon"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key",
    IMMEDIATE_CHANGES,
)
def test_the_preview_of_a_change_is_what_is_billed(year: Year, in_a, key):
    """README: "a preview is what is then billed". For the changes that took effect at once, the
    preview returned by the service equals the invoice at the change, line by line, before tax."""
    at, previewed = year.previews[key]
    invoice = Invoice.objects.get(subscription_id=year.subscription_ids[key], bill_point=at)
    billed = [
        (line.kind, line.description, line.amount, line.period_start, line.period_end)
        for line in invoice.lines.order_by("position")
    ]
    assert previewed == billed
