"""Subscription changes on real PostgreSQL with time frozen: upgrades, downgrades, cancellations,
resumption, trials and pending starts. Every change is previewed first and the preview is what
the billing run then computes for the same bill point."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
import time_machine
from auditlog.models import LogEntry

from billing.models import Plan, Subscription, SubscriptionPhase
from billing.schedule import next_bill_point
from billing.selectors.bill import bill_get
from billing.selectors.subscription_state import subscription_state_get
from billing.services.organization import organization_close
from billing.services.plan import ChargeInput
from billing.services.subscription import (
    subscription_cancel,
    subscription_change_plan,
    subscription_create,
    subscription_resume,
)
from core.errors import DomainError
from invoicing.services.billing_run import billing_run
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from tests.billing.bill_points import bill_point_close
from tests.factories import MeterFactory, OrganizationFactory, PlanFactory
from tests.helpers import utc

D = Decimal


def calls(customer, *timestamps):
    rows = [
        (f"{customer}-{ts.isoformat()}-{i}", customer, "api_call", ts, msgspec.Raw(b"{}"))
        for i, ts in enumerate(timestamps)
    ]
    landing_store(events=rows, received_at=datetime.now(UTC))
    assert drain_once(max_events=100_000).inserted == len(rows)


def spread(start, count, step=timedelta(minutes=1)):
    return [start + i * step for i in range(count)]


@pytest.fixture
def plans(in_a):
    MeterFactory()
    per_unit = {"model": "per_unit", "unit_amount": "0.01"}
    graduated = {
        "model": "graduated",
        "tiers": [{"up_to": "1000", "unit_amount": "0"}, {"up_to": None, "unit_amount": "0.005"}],
    }

    def make(code, name, fee, price, currency="USD", **extra):
        charges = [ChargeInput(meter="calls", price=price)]
        return PlanFactory(
            code=code, name=name, currency=currency, base_fee=fee, charges=charges, **extra
        ).versions.get()

    return {
        "basic": make("basic", "Basic", "30.00", per_unit),
        "pro": make("pro", "Pro", "60.00", graduated),
        "euro": make("euro", "Euro", "10.00", per_unit, currency="EUR"),
    }


def billed_through(subscription, until):
    """Run the billing run up to `until`: every bill point due is invoiced (a credit for unused
    time gives back only what was invoiced)."""
    billing_run(at=until)
    subscription.refresh_from_db()
    return subscription


def lines(bill):
    return [(line.kind, line.description, line.amount.amount) for line in bill.lines]


def phases(subscription):
    return [
        (p.plan_version.plan.code, p.starts_at, p.ends_at)
        for p in SubscriptionPhase.objects.filter(subscription=subscription).select_related("plan_version__plan")
    ]


def snapshot(subscription):
    subscription.refresh_from_db()
    return (
        {f.attname: getattr(subscription, f.attname) for f in Subscription._meta.concrete_fields},
        phases(subscription),
        LogEntry.objects.count(),
    )


@pytest.mark.django_db
def test_upgrade_now_preview_equals_what_is_billed(plans):
    org = OrganizationFactory(external_id="acme", currency="USD")
    with time_machine.travel(utc(2027, 3, 15, 9, 30, 15, 123456), tick=False):
        sub = subscription_create(actor=None, organization=org, plan_version=plans["basic"])
    assert sub.started_at == utc(2027, 3, 15, 9, 30, 15)  # whole seconds
    calls("acme", *spread(utc(2027, 4, 2), 500))
    calls("other", *spread(utc(2027, 4, 2), 50))
    with time_machine.travel(utc(2027, 4, 11), tick=False):
        billed_through(sub, utc(2027, 4, 11))
        assert sub.billed_through == utc(2027, 4, 1) and sub.status == "active"
        before = snapshot(sub)
        preview = subscription_change_plan(actor=None, subscription=sub, plan_version=plans["pro"], preview=True)
        assert snapshot(sub) == before  # a preview writes nothing
        assert (preview.kind, preview.effective_at, preview.preview) == ("upgrade", utc(2027, 4, 11), True)
        assert lines(preview.bill) == [
            ("usage", "API calls", D("5.00")),  # 500 calls so far at Basic's 0.01
            ("base_fee_credit", "Unused time on Basic after 2027-04-11", D("-20.00")),
            ("base_fee", "Remaining time on Pro after 2027-04-11", D("40.00")),
        ]
        change = subscription_change_plan(actor=None, subscription=sub, plan_version=plans["pro"])
        assert change.bill == preview.bill
        sub.refresh_from_db()
        # what the billing run computes for this bill point, from what was stored
        assert bill_get(subscription_state_get(sub), utc(2027, 4, 11)) == preview.bill
    assert sub.plan_version == plans["pro"] and sub.next_bill_at == utc(2027, 4, 11)
    assert (sub.current_period_start, sub.current_period_end) == (utc(2027, 4, 1), utc(2027, 5, 1))
    assert phases(sub) == [
        ("basic", utc(2027, 3, 15, 9, 30, 15), utc(2027, 4, 11)),
        ("pro", utc(2027, 4, 11), None),
    ]
    event = LogEntry.objects.get_for_object(sub).filter(changes__event__1="subscription.upgrade").get()
    assert event.changes["plan_version"] == [plans["basic"].pk, plans["pro"].pk]
    assert event.changes["effective_at"] == [None, "2027-04-11T00:00:00+00:00"]


@pytest.mark.django_db
def test_downgrade_waits_for_period_end_unless_asked_now(plans):
    org = OrganizationFactory(external_id="acme", currency="USD")
    with time_machine.travel(utc(2027, 4, 1), tick=False):
        sub = subscription_create(actor=None, organization=org, plan_version=plans["pro"])
    calls("acme", *spread(utc(2027, 4, 3), 1400))
    with time_machine.travel(utc(2027, 4, 20), tick=False):
        billed_through(sub, utc(2027, 4, 20))
        preview = subscription_change_plan(actor=None, subscription=sub, plan_version=plans["basic"], preview=True)
        change = subscription_change_plan(actor=None, subscription=sub, plan_version=plans["basic"])
    assert (change.kind, change.effective_at) == ("downgrade", utc(2027, 5, 1))
    assert change.bill == preview.bill
    assert lines(change.bill) == [
        ("usage", "API calls", D("2.00")),  # April under Pro: 400 calls past the free 1,000
        ("base_fee", "Basic base fee", D("30.00")),
    ]
    sub.refresh_from_db()
    assert sub.plan_version == plans["pro"]  # still on Pro until May 1
    assert phases(sub) == [("pro", utc(2027, 4, 1), utc(2027, 5, 1)), ("basic", utc(2027, 5, 1), None)]
    assert next_bill_point(subscription_state_get(sub), utc(2027, 4, 1)) == utc(2027, 5, 1)

    # Asked for now instead, the scheduled downgrade is replaced by an immediate one
    with time_machine.travel(utc(2027, 4, 21), tick=False):
        now = subscription_change_plan(actor=None, subscription=sub, plan_version=plans["basic"], timing="now")
    assert now.effective_at == utc(2027, 4, 21)
    assert lines(now.bill) == [
        ("usage", "API calls", D("2.00")),
        ("base_fee_credit", "Unused time on Pro after 2027-04-21", D("-20.00")),  # 10 of 30 days of 60.00
        ("base_fee", "Remaining time on Basic after 2027-04-21", D("10.00")),
    ]
    assert phases(sub) == [("pro", utc(2027, 4, 1), utc(2027, 4, 21)), ("basic", utc(2027, 4, 21), None)]
    sub.refresh_from_db()
    assert sub.plan_version == plans["basic"]


@pytest.mark.django_db
def test_cancel_at_period_end_then_resume_then_cancel_at_once(plans):
    org = OrganizationFactory(external_id="acme", currency="USD")
    with time_machine.travel(utc(2027, 4, 1), tick=False):
        sub = subscription_create(actor=None, organization=org, plan_version=plans["basic"])
    with time_machine.travel(utc(2027, 4, 10), tick=False):
        billed_through(sub, utc(2027, 4, 10))
        scheduled = subscription_cancel(actor=None, subscription=sub)
        sub.refresh_from_db()
        assert (sub.status, sub.cancel_at_period_end, sub.ended_at) == ("active", True, utc(2027, 5, 1))
        assert lines(scheduled.bill) == [("usage", "API calls", D("0.00"))]  # no May fee
        with pytest.raises(DomainError) as err:
            subscription_change_plan(actor=None, subscription=sub, plan_version=plans["pro"])
        assert err.value.code == "cancellation_scheduled"
        subscription_resume(actor=None, subscription=sub)
        sub.refresh_from_db()
        assert (sub.cancel_at_period_end, sub.ended_at, sub.canceled_at) == (False, None, None)
        assert phases(sub) == [("basic", utc(2027, 4, 1), None)]
    with time_machine.travel(utc(2027, 4, 21), tick=False):
        preview = subscription_cancel(actor=None, subscription=sub, at_period_end=False, preview=True)
        done = subscription_cancel(actor=None, subscription=sub, at_period_end=False)
    assert done.bill == preview.bill
    assert lines(done.bill) == [
        ("usage", "API calls", D("0.00")),
        ("base_fee_credit", "Unused time on Basic after 2027-04-21", D("-10.00")),
    ]
    sub.refresh_from_db()
    assert (sub.status, sub.ended_at, sub.canceled_at) == ("canceled", utc(2027, 4, 21), utc(2027, 4, 21))
    state = subscription_state_get(sub)
    assert next_bill_point(state, utc(2027, 4, 1)) == utc(2027, 4, 21)
    # one more, the event window (35 days) after the end, for late usage of its last period
    assert next_bill_point(state, utc(2027, 4, 21)) == utc(2027, 5, 26)
    assert next_bill_point(state, utc(2027, 5, 26)) is None
    with pytest.raises(DomainError) as err:
        subscription_resume(actor=None, subscription=sub)
    assert err.value.code == "not_resumable"


@pytest.mark.django_db
def test_trial_status_follows_the_bill_points(plans):
    trial = plans["basic"].plan.versions.create(version=2, base_fee=D("31.00"), trial_days=14)
    org = OrganizationFactory(external_id="acme", currency="USD", timezone="America/New_York")
    with time_machine.travel(utc(2027, 1, 10, 5), tick=False):  # Jan 10 00:00 in New York
        sub = subscription_create(actor=None, organization=org, plan_version=trial)
    assert (sub.status, sub.trial_end) == ("trialing", utc(2027, 1, 24, 5))
    with time_machine.travel(utc(2027, 1, 24, 5), tick=False):
        bill_point_close(subscription=sub, point=utc(2027, 1, 10, 5))
        assert sub.status == "trialing" and sub.next_bill_at == utc(2027, 1, 24, 5)
        # the fee for Jan 24 - Feb 1 (New York midnights): 8 of 31 days
        assert lines(bill_get(subscription_state_get(sub), utc(2027, 1, 24, 5))) == [
            ("base_fee", "Basic base fee (prorated)", D("8.00"))
        ]
        bill_point_close(subscription=sub, point=utc(2027, 1, 24, 5))
    assert sub.status == "active" and sub.next_bill_at == utc(2027, 2, 1, 5)


@pytest.mark.django_db
def test_pending_subscription_changes_and_cancels_before_it_starts(plans):
    org = OrganizationFactory(external_id="acme", currency="USD")
    with time_machine.travel(utc(2027, 4, 1), tick=False):
        sub = subscription_create(actor=None, organization=org, plan_version=plans["basic"], start_at=utc(2027, 5, 1))
        assert sub.status == "pending"
        change = subscription_change_plan(actor=None, subscription=sub, plan_version=plans["pro"])
        assert change.effective_at == utc(2027, 5, 1)
        assert lines(change.bill) == [("base_fee", "Pro base fee", D("60.00"))]
        assert phases(sub) == [("pro", utc(2027, 5, 1), None)]
        cancel = subscription_cancel(actor=None, subscription=sub, at_period_end=False)
    assert cancel.bill.lines == ()
    sub.refresh_from_db()
    assert (sub.status, sub.ended_at) == ("canceled", utc(2027, 5, 1))


@pytest.mark.django_db
def test_dst_in_the_organization_timezone(plans):
    basic = plans["basic"].plan.versions.create(version=2, base_fee=D("74.30"))
    pro = plans["pro"].plan.versions.create(version=2, base_fee=D("148.60"))
    org = OrganizationFactory(external_id="berlin", currency="USD", timezone="Europe/Berlin")
    with time_machine.travel(utc(2027, 2, 28, 23), tick=False):  # Mar 1 00:00 CET
        sub = subscription_create(actor=None, organization=org, plan_version=basic)
    assert (sub.current_period_start, sub.current_period_end) == (utc(2027, 2, 28, 23), utc(2027, 3, 31, 22))
    with time_machine.travel(utc(2027, 3, 16, 23), tick=False):  # Mar 17 00:00 CET
        billed_through(sub, utc(2027, 3, 16, 23))
        change = subscription_change_plan(actor=None, subscription=sub, plan_version=pro)
    # 359 of March's 743 hours (the clocks go forward on Mar 28): 0.10 and 0.20 an hour
    assert lines(change.bill) == [
        ("base_fee_credit", "Unused time on Basic after 2027-03-17", D("-35.90")),
        ("base_fee", "Remaining time on Pro after 2027-03-17", D("71.80")),
    ]
    assert change.bill.lines[0].proration == (359 * 3600, 743 * 3600)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("target", "setup", "code"),
    [
        ("basic", None, "same_plan_version"),
        ("euro", None, "currency_mismatch"),
        ("pro", "inactive", "plan_inactive"),
        ("pro", "canceled", "subscription_ended"),
        ("pro", "billed_later", "change_in_billed_past"),
    ],
)
def test_refused_changes_write_nothing(plans, target, setup, code):
    org = OrganizationFactory(external_id="acme", currency="USD")
    with time_machine.travel(utc(2027, 4, 1), tick=False):
        sub = subscription_create(actor=None, organization=org, plan_version=plans["basic"])
    with time_machine.travel(utc(2027, 4, 10), tick=False):
        if setup == "inactive":
            Plan.objects.filter(code="pro").update(is_active=False)
        if setup == "canceled":
            subscription_cancel(actor=None, subscription=sub, at_period_end=False)
        if setup == "billed_later":
            Subscription.objects.filter(pk=sub.pk).update(billed_through=utc(2027, 4, 11))
        before = snapshot(sub)
        with pytest.raises(DomainError) as err:
            subscription_change_plan(actor=None, subscription=sub, plan_version=plans[target].plan.versions.get())
        assert err.value.code == code
        assert snapshot(sub) == before


@pytest.mark.django_db
def test_closing_the_organization_ends_its_subscriptions_with_a_final_credit(plans):
    org = OrganizationFactory(external_id="acme", currency="USD")
    with time_machine.travel(utc(2027, 4, 1), tick=False):
        sub = subscription_create(actor=None, organization=org, plan_version=plans["basic"])
        billing_run(at=utc(2027, 4, 1))
    with time_machine.travel(utc(2027, 4, 16), tick=False):
        organization_close(actor=None, organization=org)
    sub.refresh_from_db()
    assert (sub.status, sub.ended_at, sub.next_bill_at) == ("ended", utc(2027, 4, 16), utc(2027, 4, 16))
    assert lines(bill_get(subscription_state_get(sub), utc(2027, 4, 16))) == [
        ("usage", "API calls", D("0.00")),
        ("base_fee_credit", "Unused time on Basic after 2027-04-16", D("-15.00")),
    ]


@pytest.mark.django_db
def test_a_change_due_now_asks_for_a_billing_run_on_commit(plans, django_capture_on_commit_callbacks, monkeypatch):
    from celery import current_app
    from django.db import connection

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, **kw: sent.append((name, kw["headers"])))
    org = OrganizationFactory(external_id="acme", currency="USD")
    with time_machine.travel(utc(2027, 4, 1), tick=False):
        sub = subscription_create(actor=None, organization=org, plan_version=plans["basic"])
    with time_machine.travel(utc(2027, 4, 10), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            subscription_change_plan(actor=None, subscription=sub, plan_version=plans["pro"], preview=True)
        assert sent == []  # a preview asks for nothing
        with django_capture_on_commit_callbacks(execute=True):
            subscription_cancel(actor=None, subscription=sub)  # at period end: billed then
        assert sent == []
        subscription_resume(actor=None, subscription=sub)
        with django_capture_on_commit_callbacks(execute=True):
            subscription_change_plan(actor=None, subscription=sub, plan_version=plans["pro"])
    assert sent == [("invoicing.billing_run", {"_schema_name": connection.schema_name})]
