"""Bill points and bill lines (billing.schedule, billing.bill): exact values, no database.

Every amount below is worked out by hand in the comment beside it."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis.strategies import decimals as st_decimals
from hypothesis.strategies import integers as st_integers

from billing.bill import BilledFee, BillPricingError, RedemptionState, UsageFigures, bill_build, bill_usage_requests
from billing.periods import calendar_period_containing
from billing.schedule import (
    ChargeState,
    PhaseState,
    SubscriptionState,
    VersionState,
    bill_points,
    next_bill_point,
    previous_bill_point,
)
from core.money import Money
from tests.helpers import utc

D = Decimal
DAY = 86400


CALLS = ChargeState(
    id=11,
    meter_id=1,
    meter_code="calls",
    meter_name="API calls",
    aggregation="count",
    meter_group_by=(),
    name="",
    price={"model": "per_unit", "unit_amount": "0.01", "minimum_amount": None},
)
CALLS_GRADUATED = replace(
    CALLS,
    id=12,
    price={
        "model": "graduated",
        "tiers": [
            {"up_to": "1000", "unit_amount": "0", "flat_amount": "0"},
            {"up_to": None, "unit_amount": "0.005", "flat_amount": "0"},
        ],
        "minimum_amount": None,
    },
)


def version(vid=1, *, fee="30.00", timing="advance", interval="month", charges=(CALLS,), name="Basic", commit=None):
    return VersionState(
        id=vid,
        plan_code=name.lower(),
        plan_name=name,
        version=1,
        interval=interval,
        currency="USD",
        base_fee=D(fee),
        base_fee_timing=timing,
        minimum_commitment=None if commit is None else D(commit),
        charges=tuple(charges),
    )


BASIC = version(1)
PRO = version(2, fee="60.00", charges=(CALLS_GRADUATED,), name="Pro")


def state(phases, *, started, mode="calendar", tz="UTC", trial_end=None, ended_at=None, billed_through=None, cur="USD"):
    interval = phases[0][0].interval
    anchor = (
        started
        if mode == "anniversary"
        else calendar_period_containing(instant=started, timezone=tz, interval=interval)[0]
    )
    return SubscriptionState(
        id=7,
        organization_id=3,
        customer="acme",
        currency=cur,
        timezone=tz,
        billing_mode=mode,
        billing_anchor=anchor,
        started_at=started,
        trial_end=trial_end,
        ended_at=ended_at,
        billed_through=billed_through,
        phases=tuple(PhaseState(v, start, end) for v, start, end in phases),
    )


def usage(st, point, values=None, groups=None, events=None):
    """Figures for every request of the bill: `values` maps meter id -> value."""
    values = values or {}
    return {
        r: UsageFigures(
            value=D(values.get(r.meter_id, 0)),
            groups=(groups or {}).get(r.meter_id, {}),
            event_values=(events or {}).get(r.meter_id) if r.values else None,
        )
        for r in bill_usage_requests(st, point)
    }


def summary(bill):
    return [(line.kind, line.description, line.amount.amount) for line in bill.lines]


def paid(v, start, end, amount, *, period_start=None, point=None):
    """What an earlier invoice billed of version `v`'s fee for [start, end): the credit for unused
    time gives back only what was billed."""
    return BilledFee(
        plan_version_id=v.id,
        billing_period_start=period_start or start,
        window=(start, end),
        amount=Fraction(D(amount)),
        bill_point=point or start,
    )


APRIL_BASIC = paid(BASIC, utc(2027, 4, 1), utc(2027, 5, 1), "30.00")


def test_calendar_start_mid_month_prorates_the_first_period_and_bills_usage_in_arrears():
    st = state([(version(fee="31.00"), utc(2027, 1, 20), None)], started=utc(2027, 1, 20))
    assert list(bill_points(st, after=None, until=utc(2027, 3, 1))) == [
        utc(2027, 1, 20),
        utc(2027, 2, 1),
        utc(2027, 3, 1),
    ]

    first = bill_build(st, utc(2027, 1, 20), usage={})
    assert bill_usage_requests(st, utc(2027, 1, 20)) == []
    # 31.00 for 12 of January's 31 days = 12.00
    assert summary(first) == [("base_fee", "Basic base fee (prorated)", D("12.00"))]
    line = first.lines[0]
    assert (line.period_start, line.period_end) == (utc(2027, 1, 20), utc(2027, 2, 1))
    assert (line.billing_period_start, line.billing_period_end) == (utc(2027, 1, 1), utc(2027, 2, 1))
    assert line.proration == (12 * DAY, 31 * DAY) and line.currency == "USD"

    st = replace(st, billed_through=utc(2027, 1, 20))
    [request] = bill_usage_requests(st, utc(2027, 2, 1))
    assert (request.meter_id, request.customer, request.start, request.end) == (
        1,
        "acme",
        utc(2027, 1, 20),
        utc(2027, 2, 1),
    )
    second = bill_build(st, utc(2027, 2, 1), usage=usage(st, utc(2027, 2, 1), {1: 1234}))
    # 1,234 calls at 0.01 = 12.34 for the closed (partial) period, then February in advance
    assert summary(second) == [("usage", "API calls", D("12.34")), ("base_fee", "Basic base fee", D("31.00"))]
    assert second.lines[0].quantity == D(1234) and second.lines[0].unit_amount == D("0.01")
    assert second.lines[1].proration is None
    assert second.subtotal == Money(D("43.34"), "USD")


def test_upgrade_mid_month_bills_usage_so_far_old_prices_and_prorates_both_fees():
    st = state(
        [(BASIC, utc(2027, 3, 15), utc(2027, 4, 11)), (PRO, utc(2027, 4, 11), None)],
        started=utc(2027, 3, 15),
        billed_through=utc(2027, 4, 1),
    )
    assert previous_bill_point(st, utc(2027, 4, 11)) == utc(2027, 4, 1)
    assert next_bill_point(st, utc(2027, 4, 1)) == utc(2027, 4, 11)
    bill = bill_build(st, utc(2027, 4, 11), usage=usage(st, utc(2027, 4, 11), {1: 500}), fees=[APRIL_BASIC])
    # April has 30 days; 20 are left after Apr 11: -30.00*20/30 and +60.00*20/30
    assert summary(bill) == [
        ("usage", "API calls", D("5.00")),  # 500 calls under Basic's 0.01
        ("base_fee_credit", "Unused time on Basic after 2027-04-11", D("-20.00")),
        ("base_fee", "Remaining time on Pro after 2027-04-11", D("40.00")),
    ]
    assert bill.lines[1].proration == (20 * DAY, 30 * DAY) == bill.lines[2].proration
    assert bill.lines[0].plan_version_id == 1 and bill.lines[2].plan_version_id == 2

    st = replace(st, billed_through=utc(2027, 4, 11))
    end = bill_build(st, utc(2027, 5, 1), usage=usage(st, utc(2027, 5, 1), {1: 3000}))
    # 3,000 calls under Pro: 1,000 free, 2,000 at 0.005 = 10.00; May's Pro fee in advance
    assert summary(end) == [("usage", "API calls", D("10.00")), ("base_fee", "Pro base fee", D("60.00"))]
    assert [(b.tier, b.quantity, b.amount) for b in end.lines[0].breakdown] == [(0, D(1000), D(0)), (1, D(2000), D(10))]
    assert (end.lines[0].period_start, end.lines[0].period_end) == (utc(2027, 4, 11), utc(2027, 5, 1))


def test_dst_in_the_period_prorates_on_real_seconds():
    # Berlin's March 2027 is [Feb 28 23:00Z, Mar 31 22:00Z): 743 hours (the clocks go forward
    # on Mar 28). A change at local midnight of Mar 17 leaves 359 hours.
    v1 = version(1, fee="74.30", charges=())
    v2 = version(2, fee="148.60", charges=(), name="Pro")
    change = utc(2027, 3, 16, 23)
    st = state(
        [(v1, utc(2027, 2, 28, 23), change), (v2, change, None)],
        started=utc(2027, 2, 28, 23),
        tz="Europe/Berlin",
        billed_through=utc(2027, 2, 28, 23),
    )
    assert next_bill_point(st, change) == utc(2027, 3, 31, 22)
    bill = bill_build(st, change, usage={}, fees=[paid(v1, utc(2027, 2, 28, 23), utc(2027, 3, 31, 22), "74.30")])
    # 74.30 is 0.10 an hour: 35.90 for 359 hours; 148.60 is 0.20 an hour: 71.80
    assert summary(bill) == [
        ("base_fee_credit", "Unused time on Basic after 2027-03-17", D("-35.90")),
        ("base_fee", "Remaining time on Pro after 2027-03-17", D("71.80")),
    ]
    assert bill.lines[0].proration == (359 * 3600, 743 * 3600)


def test_anniversary_anchor_31_in_a_leap_year():
    st = state(
        [(version(fee="31.00", charges=()), utc(2028, 1, 31, 10), None)],
        started=utc(2028, 1, 31, 10),
        mode="anniversary",
    )
    # Jan 31 -> Feb 29 (leap day) -> Mar 31: the anchor clamps and comes back
    assert list(bill_points(st, after=None, until=utc(2028, 4, 30, 10))) == [
        utc(2028, 1, 31, 10),
        utc(2028, 2, 29, 10),
        utc(2028, 3, 31, 10),
        utc(2028, 4, 30, 10),
    ]
    assert summary(bill_build(st, utc(2028, 1, 31, 10), usage={})) == [("base_fee", "Basic base fee", D("31.00"))]
    change = utc(2028, 3, 10, 10)
    st = replace(
        st,
        billed_through=utc(2028, 2, 29, 10),
        phases=(
            PhaseState(st.phases[0].version, utc(2028, 1, 31, 10), change),
            PhaseState(version(2, fee="62.00", charges=(), name="Pro"), change, None),
        ),
    )
    # [Feb 29, Mar 31) has 31 days, 21 left after Mar 10: -21.00 and +42.00
    march = paid(st.phases[0].version, utc(2028, 2, 29, 10), utc(2028, 3, 31, 10), "31.00")
    assert summary(bill_build(st, change, usage={}, fees=[march])) == [
        ("base_fee_credit", "Unused time on Basic after 2028-03-10", D("-21.00")),
        ("base_fee", "Remaining time on Pro after 2028-03-10", D("42.00")),
    ]


@pytest.mark.parametrize(
    ("anchor", "next_points"),
    [
        (utc(2027, 1, 29, 8), [utc(2027, 2, 28, 8), utc(2027, 3, 29, 8)]),
        (utc(2027, 1, 30, 8), [utc(2027, 2, 28, 8), utc(2027, 3, 30, 8)]),
        (utc(2027, 1, 31, 8), [utc(2027, 2, 28, 8), utc(2027, 3, 31, 8)]),
    ],
)
def test_anniversary_anchors_29_30_31_bill_on_clamped_days(anchor, next_points):
    st = state([(version(charges=()), anchor, None)], started=anchor, mode="anniversary")
    assert list(bill_points(st, after=anchor, until=utc(2027, 4, 1))) == next_points


def test_trial_defers_the_fee_to_its_end_and_usage_during_it_is_free():
    st = state([(version(fee="31.00"), utc(2027, 1, 10), None)], started=utc(2027, 1, 10), trial_end=utc(2027, 1, 24))
    assert list(bill_points(st, after=None, until=utc(2027, 2, 1))) == [
        utc(2027, 1, 10),
        utc(2027, 1, 24),
        utc(2027, 2, 1),
    ]
    assert bill_build(st, utc(2027, 1, 10), usage={}).lines == ()
    st = replace(st, billed_through=utc(2027, 1, 10))
    assert bill_usage_requests(st, utc(2027, 1, 24)) == []  # the segment is all trial
    # 31.00 for the 8 days Jan 24 - Feb 1
    assert summary(bill_build(st, utc(2027, 1, 24), usage={})) == [("base_fee", "Basic base fee (prorated)", D("8.00"))]
    st = replace(st, billed_through=utc(2027, 1, 24))
    [request] = bill_usage_requests(st, utc(2027, 2, 1))
    assert (request.start, request.end) == (utc(2027, 1, 24), utc(2027, 2, 1))


def test_in_arrears_fee_and_cancel_at_once():
    arrears = version(fee="30.00", timing="arrears")
    st = state([(arrears, utc(2027, 4, 1), utc(2027, 4, 16))], started=utc(2027, 4, 1), ended_at=utc(2027, 4, 16))
    assert list(bill_points(st, after=None, until=utc(2027, 6, 1))) == [utc(2027, 4, 1), utc(2027, 4, 16)]
    assert bill_build(st, utc(2027, 4, 1), usage={}).lines == ()  # nothing in advance
    st = replace(st, billed_through=utc(2027, 4, 1))
    # 15 of April's 30 days: 15.00 in arrears, plus the usage
    assert summary(bill_build(st, utc(2027, 4, 16), usage=usage(st, utc(2027, 4, 16), {1: 100}))) == [
        ("usage", "API calls", D("1.00")),
        ("base_fee", "Basic base fee (prorated)", D("15.00")),
    ]


def test_cancel_at_once_credits_the_unused_advance_fee():
    st = state(
        [(BASIC, utc(2027, 4, 1), utc(2027, 4, 21))],
        started=utc(2027, 4, 1),
        ended_at=utc(2027, 4, 21),
        billed_through=utc(2027, 4, 1),
    )
    # 10 of 30 days unused: -10.00
    assert summary(bill_build(st, utc(2027, 4, 21), usage=usage(st, utc(2027, 4, 21)), fees=[APRIL_BASIC])) == [
        ("usage", "API calls", D("0.00")),
        ("base_fee_credit", "Unused time on Basic after 2027-04-21", D("-10.00")),
    ]
    # nothing billed for April (a voided invoice does not count): nothing to give back
    assert summary(bill_build(st, utc(2027, 4, 21), usage=usage(st, utc(2027, 4, 21)))) == [
        ("usage", "API calls", D("0.00"))
    ]


def test_downgrade_at_period_end_bills_the_old_period_and_the_new_fee_in_advance():
    st = state(
        [(PRO, utc(2027, 3, 15), utc(2027, 5, 1)), (BASIC, utc(2027, 5, 1), None)],
        started=utc(2027, 3, 15),
        billed_through=utc(2027, 4, 1),
    )
    assert next_bill_point(st, utc(2027, 4, 1)) == utc(2027, 5, 1)
    assert summary(bill_build(st, utc(2027, 5, 1), usage=usage(st, utc(2027, 5, 1), {1: 1400}))) == [
        ("usage", "API calls", D("2.00")),  # Pro's prices: 400 paid calls at 0.005
        ("base_fee", "Basic base fee", D("30.00")),
    ]


def test_monthly_to_yearly_upgrade_continues_on_yearly_periods():
    yearly = version(2, fee="365.00", interval="year", charges=(), name="Annual")
    change = utc(2027, 4, 11)
    st = state(
        [(version(charges=()), utc(2027, 4, 1), change), (yearly, change, None)],
        started=utc(2027, 4, 1),
        billed_through=utc(2027, 4, 1),
    )
    # 265 days from Apr 11 to Jan 1 of a 365-day year: 265.00
    assert summary(bill_build(st, change, usage={}, fees=[APRIL_BASIC])) == [
        ("base_fee_credit", "Unused time on Basic after 2027-04-11", D("-20.00")),
        ("base_fee", "Remaining time on Annual after 2027-04-11", D("265.00")),
    ]
    assert next_bill_point(st, change) == utc(2028, 1, 1)


def test_minimum_commitment_trues_up_prorated():
    committed = version(
        fee="10.00", commit="100.00", charges=(replace(CALLS, price={**CALLS.price, "unit_amount": "1"}),)
    )
    st = state([(committed, utc(2027, 4, 16), None)], started=utc(2027, 4, 16), billed_through=utc(2027, 4, 16))
    # Half of April: target 50.00; usage 12.00 and half the fee (5.00) count: 33.00 to go
    assert summary(bill_build(st, utc(2027, 5, 1), usage=usage(st, utc(2027, 5, 1), {1: 12}))) == [
        ("usage", "API calls", D("12.00")),
        ("commitment", "Basic: minimum commitment", D("33.00")),
        ("base_fee", "Basic base fee", D("10.00")),
    ]
    st = replace(st, billed_through=utc(2027, 5, 1))
    # A whole May above the commitment (95.00 + 10.00 >= 100.00): no true-up
    assert [k for k, _, _ in summary(bill_build(st, utc(2027, 6, 1), usage=usage(st, utc(2027, 6, 1), {1: 95})))] == [
        "usage",
        "base_fee",
    ]


def test_charge_minimum_amount():
    minimum = replace(CALLS, price={**CALLS.price, "minimum_amount": "20.00"})
    st = state(
        [(version(charges=(minimum,)), utc(2027, 4, 1), None)], started=utc(2027, 4, 1), billed_through=utc(2027, 4, 1)
    )
    assert summary(bill_build(st, utc(2027, 5, 1), usage=usage(st, utc(2027, 5, 1), {1: 500}))) == [
        ("usage", "API calls", D("5.00")),
        ("charge_minimum", "API calls: minimum charge", D("15.00")),
        ("base_fee", "Basic base fee", D("30.00")),
    ]


def test_grouped_charges_price_each_group_and_combine_extra_dimensions():
    by_region = ChargeState(
        id=21,
        meter_id=2,
        meter_code="bytes",
        meter_name="Bytes",
        aggregation="sum",
        meter_group_by=("region", "model"),
        name="Storage",
        price={"model": "per_unit", "unit_amount": "1", "minimum_amount": None},
        group_property="region",
        group_prices={"eu": {"model": "per_unit", "unit_amount": "0.5", "minimum_amount": None}},
    )
    st = state(
        [(version(charges=(by_region,)), utc(2027, 4, 1), None)],
        started=utc(2027, 4, 1),
        billed_through=utc(2027, 4, 1),
    )
    [request] = bill_usage_requests(st, utc(2027, 5, 1))
    assert request.grouped and not request.values
    groups = {2: {("us", "a"): D(3), ("eu", "a"): D(4), ("eu", "b"): D(6), (None, "a"): D(2)}}
    bill = bill_build(st, utc(2027, 5, 1), usage=usage(st, utc(2027, 5, 1), {2: 15}, groups=groups))
    assert summary(bill)[:3] == [
        ("usage", "Storage · eu", D("5.00")),  # (4 + 6) at 0.5
        ("usage", "Storage · us", D("3.00")),
        ("usage", "Storage · (none)", D("2.00")),  # no region: the default price
    ]
    assert [line.group for line in bill.lines[:3]] == ["eu", "us", None]


def test_percentage_charge_prices_each_event():
    fees = ChargeState(
        id=31,
        meter_id=3,
        meter_code="payments",
        meter_name="Payments",
        aggregation="sum",
        meter_group_by=(),
        name="",
        price={
            "model": "percentage",
            "rate": "2.9",
            "fixed_amount": "0.30",
            "free_events": 0,
            "free_amount": "0",
            "min_amount_per_event": None,
            "max_amount_per_event": None,
            "minimum_amount": None,
        },
    )
    st = state(
        [(version(fee="0", charges=(fees,)), utc(2027, 4, 1), None)],
        started=utc(2027, 4, 1),
        billed_through=utc(2027, 4, 1),
    )
    [request] = bill_usage_requests(st, utc(2027, 5, 1))
    assert request.values
    events = {3: {(): [D(100), D(50)]}}
    bill = bill_build(st, utc(2027, 5, 1), usage=usage(st, utc(2027, 5, 1), {3: 150}, events=events))
    # 2.9 % of 150 = 4.35, plus 0.30 for each of 2 events; no base fee line for a zero fee
    assert summary(bill) == [("usage", "Payments", D("4.95"))]


def _redemption(rid=1, **overrides):
    values = {
        "id": rid,
        "coupon_code": "SPRING",
        "coupon_name": "Spring",
        "discount_type": "percentage",
        "percent_off": D("20"),
        "amount_off": None,
        "applies_to": "base_fee",
        "meter_codes": (),
        "redeemed_at": utc(2027, 4, 5),
        "covers_from": utc(2027, 4, 1),
        "covers_until": utc(2027, 5, 1),
    }
    values.update(overrides)
    return RedemptionState(**values)


def _upgrade_state():
    return state(
        [(BASIC, utc(2027, 3, 15), utc(2027, 4, 11)), (PRO, utc(2027, 4, 11), None)],
        started=utc(2027, 3, 15),
        billed_through=utc(2027, 4, 1),
    )


def test_percentage_coupon_on_the_base_fee_and_the_credit_for_unused_time():
    st = _upgrade_state()
    bill = bill_build(
        st,
        utc(2027, 4, 11),
        usage=usage(st, utc(2027, 4, 11), {1: 500}),
        redemptions=[_redemption()],
        fees=[APRIL_BASIC],
    )
    # Redeemed on Apr 5: April's Basic fee (charged Apr 1) was billed in full, so its credit is
    # the list price's share; Pro's remaining time is discounted: 20 % of 40.00
    assert summary(bill) == [
        ("usage", "API calls", D("5.00")),
        ("base_fee_credit", "Unused time on Basic after 2027-04-11", D("-20.00")),
        ("base_fee", "Remaining time on Pro after 2027-04-11", D("40.00")),
        ("discount", "Spring (SPRING)", D("-8.00")),
    ]
    assert bill.lines[3].discounts_line == 2 and bill.lines[3].coupon_redemption_id == 1
    # Redeemed before April began, it discounted April's charge (30.00 - 6.00): the credit gives
    # back 20 of 30 days of the 24.00 billed, and is not discounted again
    earlier = _redemption(redeemed_at=utc(2027, 3, 20), covers_from=utc(2027, 3, 1))
    discounted = replace(APRIL_BASIC, amount=Fraction(24))
    bill = bill_build(
        st, utc(2027, 4, 11), usage=usage(st, utc(2027, 4, 11), {1: 500}), redemptions=[earlier], fees=[discounted]
    )
    assert [line.amount.amount for line in bill.lines] == [D("5.00"), D("-16.00"), D("40.00"), D("-8.00")]
    # A "once" coupon of April does not touch May's fee
    st = replace(st, billed_through=utc(2027, 4, 11))
    may = bill_build(st, utc(2027, 5, 1), usage=usage(st, utc(2027, 5, 1), {1: 0}), redemptions=[_redemption()])
    assert [line.kind for line in may.lines] == ["usage", "base_fee"]


def test_fixed_coupon_never_takes_a_line_below_zero_and_spends_the_rest_on_later_lines():
    st = state([(BASIC, utc(2027, 4, 1), None)], started=utc(2027, 4, 1), billed_through=utc(2027, 4, 1))
    fixed = _redemption(
        discount_type="fixed",
        percent_off=None,
        amount_off=D("10.00"),
        applies_to="invoice",
        redeemed_at=utc(2027, 4, 1),
        covers_until=None,
    )
    point = utc(2027, 5, 1)
    bill = bill_build(st, point, usage=usage(st, point, {1: 500}), redemptions=[fixed])
    # April's usage (5.00) absorbs 5.00; the other 5.00 of April's allowance is forfeited (the
    # advance fee belongs to May), and May's own 10.00 goes on May's fee
    assert summary(bill) == [
        ("usage", "API calls", D("5.00")),
        ("discount", "Spring (SPRING)", D("-5.00")),
        ("base_fee", "Basic base fee", D("30.00")),
        ("discount", "Spring (SPRING)", D("-10.00")),
    ]
    # With 7.00 of April's allowance used on an earlier bill, 3.00 is left for April's usage
    bill = bill_build(
        st, point, usage=usage(st, point, {1: 500}), redemptions=[fixed], coupon_used={(1, utc(2027, 4, 1)): D("7.00")}
    )
    assert [line.amount.amount for line in bill.lines] == [D("5.00"), D("-3.00"), D("30.00"), D("-10.00")]


def test_coupon_on_named_charges_only():
    st = state([(BASIC, utc(2027, 4, 1), None)], started=utc(2027, 4, 1), billed_through=utc(2027, 4, 1))
    on_calls = _redemption(
        applies_to="charges", meter_codes=("calls",), percent_off=D("50"), redeemed_at=utc(2027, 4, 1)
    )
    on_other = _redemption(
        2, applies_to="charges", meter_codes=("bytes",), percent_off=D("50"), redeemed_at=utc(2027, 4, 1)
    )
    bill = bill_build(st, utc(2027, 5, 1), usage=usage(st, utc(2027, 5, 1), {1: 333}), redemptions=[on_calls, on_other])
    # 50 % of 3.33 = 1.665, rounded half-up to 1.67
    assert summary(bill) == [
        ("usage", "API calls", D("3.33")),
        ("discount", "Spring (SPRING)", D("-1.67")),
        ("base_fee", "Basic base fee", D("30.00")),
    ]


def test_zero_decimal_currency_rounds_to_whole_yen():
    yen = replace(version(fee="1000", charges=()), currency="JPY")
    st = state([(yen, utc(2027, 1, 22), None)], started=utc(2027, 1, 22), cur="JPY")
    # 1000 JPY for 10 of 31 days = 322.58..., rounded to 323
    [line] = bill_build(st, utc(2027, 1, 22), usage={}).lines
    assert (line.amount.amount, line.currency) == (D("323"), "JPY")


def test_not_a_bill_point_is_refused():
    st = state([(BASIC, utc(2027, 4, 1), None)], started=utc(2027, 4, 1))
    with pytest.raises(ValueError, match="not a bill point"):
        bill_build(st, utc(2027, 4, 9), usage={})


def test_every_line_is_decimal_and_the_bill_keeps_its_currency():
    st = _upgrade_state()
    bill = bill_build(st, utc(2027, 4, 11), usage=usage(st, utc(2027, 4, 11), {1: 7}))
    assert bill.currency == "USD"
    assert all(isinstance(line.amount, Money) and line.currency == "USD" for line in bill.lines)
    assert all(line.amount.amount == line.amount.amount.quantize(D("0.01")) for line in bill.lines)


def test_stripe_proration_example_upgrade_halfway():
    # https://docs.stripe.com/billing/subscriptions/prorations ("How prorations work"): from a
    # 10 USD monthly plan to a 20 USD one halfway through the period: -5 USD for the unused time
    # on the original plan, +10 USD for the remaining time on the new one, 5 USD in all.
    # Stripe prorates to the second from the period's start and end timestamps, as we do; halfway
    # is Apr 16 00:00 of a 30-day April. (Lago and Kill Bill prorate by days; the same here.)
    ten, twenty = version(1, fee="10", charges=()), version(2, fee="20", charges=(), name="Twenty")
    half = utc(2027, 4, 16)
    st = state(
        [(ten, utc(2027, 4, 1), half), (twenty, half, None)], started=utc(2027, 4, 1), billed_through=utc(2027, 4, 1)
    )
    bill = bill_build(st, half, usage={}, fees=[paid(ten, utc(2027, 4, 1), utc(2027, 5, 1), "10")])
    assert [line.amount.amount for line in bill.lines] == [D("-5.00"), D("10.00")]
    assert bill.subtotal == Money(D("5.00"), "USD")


@settings(max_examples=200, deadline=None)
@given(
    fee=st_decimals(min_value=0, max_value=100_000, places=2),
    fee2=st_decimals(min_value=0, max_value=100_000, places=2),
    offset=st_integers(min_value=1, max_value=30 * DAY - 1),
)
def test_property_proration_lines_match_the_exact_share_and_segments_add_up(fee, fee2, offset):
    one, two = version(1, fee=str(fee), charges=()), version(2, fee=str(fee2), charges=(), name="Two")
    change = utc(2027, 4, 1) + timedelta(seconds=offset)
    phases = [(one, utc(2027, 4, 1), change), (two, change, None)]
    st = state(phases, started=utc(2027, 4, 1), billed_through=utc(2027, 4, 1))
    april = paid(one, utc(2027, 4, 1), utc(2027, 5, 1), fee)
    lines = bill_build(st, change, usage={}, fees=[april]).lines
    remaining = Fraction(30 * DAY - offset, 30 * DAY)
    by_kind = {line.kind: line.amount.amount for line in lines}
    credit = Fraction(by_kind.get("base_fee_credit", 0))  # none when it rounds to nothing
    # each prorated line is the exact share rounded half-up to the cent, so within half a cent
    assert abs(credit + Fraction(fee) * remaining) <= Fraction(1, 200)
    if fee2:
        assert abs(Fraction(by_kind["base_fee"]) - Fraction(fee2) * remaining) <= Fraction(1, 200)
    # what the customer pays for [start, change) under `one` is never off by more than half a
    # cent, and never less than nothing
    assert abs(Fraction(fee) + credit - Fraction(fee) * (1 - remaining)) <= Fraction(1, 200)
    assert credit <= 0 and -credit <= fee


def test_the_credit_gives_back_the_share_of_each_fee_line_still_billed():
    """Basic, then Pro from Apr 10, then Basic again from Apr 20, canceled on Apr 25. What was
    billed of Basic's April fee: 30.00 for [Apr 1, May 1), 21.00 given back for [Apr 10, May 1),
    11.00 charged again for [Apr 20, May 1). For [Apr 25, May 1): 30 x 6/30 - 21 x 6/21 +
    11 x 6/11 = 6.00. A credit note that took back 15.00 of the first charge halves its share
    (3.00); had it been voided, only the second charge's share would be left (and the credit
    it was already given back would be too: nothing)."""
    p10, p20, p25 = utc(2027, 4, 10), utc(2027, 4, 20), utc(2027, 4, 25)
    phases = [(BASIC, utc(2027, 4, 1), p10), (PRO, p10, p20), (BASIC, p20, p25)]
    st = state(phases, started=utc(2027, 4, 1), ended_at=p25, billed_through=p20)
    may = utc(2027, 5, 1)
    fees = [
        APRIL_BASIC,
        paid(BASIC, p10, may, "-21.00", period_start=utc(2027, 4, 1)),
        paid(BASIC, p20, may, "11.00", period_start=utc(2027, 4, 1)),
    ]
    credit = [line for line in bill_build(st, p25, usage=usage(st, p25), fees=fees).lines if line.amount.amount < 0]
    assert [(x.kind, x.description, x.amount.amount) for x in credit] == [
        ("base_fee_credit", "Unused time on Basic after 2027-04-25", D("-6.00"))
    ]
    assert credit[0].proration == (6 * DAY, 30 * DAY) and credit[0].unit_amount == D("30.00")
    fees[0] = replace(APRIL_BASIC, amount=Fraction(15))
    [line] = [x for x in bill_build(st, p25, usage=usage(st, p25), fees=fees).lines if x.amount.amount < 0]
    assert (line.amount.amount, line.quantity, line.unit_amount) == (D("-3.00"), None, None)
    assert [x for x in bill_build(st, p25, usage=usage(st, p25), fees=fees[1:]).lines if x.amount.amount < 0] == []
    # fee lines of later bill points, other versions or other periods do not count
    others = [
        replace(APRIL_BASIC, bill_point=p25),
        replace(APRIL_BASIC, plan_version_id=PRO.id),
        replace(APRIL_BASIC, billing_period_start=utc(2027, 3, 1)),
    ]
    assert [x for x in bill_build(st, p25, usage=usage(st, p25), fees=others).lines if x.amount.amount < 0] == []


@pytest.mark.parametrize(
    ("price", "value", "why"),
    [
        ({"model": "per_unit", "unit_amount": "0"}, D("1e26"), "quantity 1E+26 is past what a line can hold"),
        ({"model": "per_unit", "unit_amount": "0.01"}, D(-1), "quantity must not be negative (got -1)."),
    ],
)
def test_usage_that_cannot_be_priced_or_stored_names_the_charge(price, value, why):
    st = state(
        [(version(charges=(replace(CALLS, price=price),)), utc(2027, 4, 1), None)],
        started=utc(2027, 4, 1),
        billed_through=utc(2027, 4, 1),
    )
    with pytest.raises(BillPricingError) as err:
        bill_build(st, utc(2027, 5, 1), usage=usage(st, utc(2027, 5, 1), {1: value}))
    assert (err.value.code, err.value.status_code) == ("pricing_error", 422)
    assert err.value.message.startswith(
        "Charge 'API calls' (meter 'calls') cannot be priced for the usage from 2027-04-01T00:00:00+00:00 to "
        "2027-05-01T00:00:00+00:00: "
    )
    assert why in err.value.message
