from decimal import Decimal

import pytest
import time_machine

from billing.models import Subscription
from billing.services.subscription import subscription_create
from core.errors import DomainError
from tests.factories import OrganizationFactory, PlanVersionFactory
from tests.helpers import utc


@pytest.mark.django_db
@time_machine.travel(utc(2027, 1, 20, 15, 30), tick=False)
def test_calendar_subscription_now_has_a_prorated_first_period(in_a):
    organization = OrganizationFactory(currency="EUR", timezone="Europe/Berlin")
    version = PlanVersionFactory(plan__currency="EUR", base_fee=Decimal("31.00"))
    subscription = subscription_create(actor=None, organization=organization, plan_version=version)
    assert subscription.status == "active" and subscription.billing_mode == "calendar"
    assert subscription.billing_anchor == utc(2026, 12, 31, 23)  # Jan 1 00:00 in Berlin
    assert (subscription.current_period_start, subscription.current_period_end) == (
        utc(2027, 1, 20, 15, 30),
        utc(2027, 1, 31, 23),
    )
    assert subscription.trial_end is None


@pytest.mark.django_db
def test_anniversary_subscription_at_a_date_with_a_trial(in_a):
    organization = OrganizationFactory(currency="USD", timezone="America/New_York")
    version = PlanVersionFactory(plan__currency="USD", trial_days=14)
    subscription = subscription_create(
        actor=None,
        organization=organization,
        plan_version=version,
        start_at=utc(2027, 1, 31, 17),
        billing_mode="anniversary",
    )
    assert subscription.status == "pending"  # it starts in 2027; trialing from then on
    assert (subscription.current_period_start, subscription.current_period_end) == (
        utc(2027, 1, 31, 17),
        utc(2027, 2, 28, 17),
    )
    assert subscription.trial_end == utc(2027, 2, 14, 17)  # 14 days later, same local time (EST both)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("org", "plan", "code"),
    [
        ({"currency": "USD"}, {"plan__currency": "EUR"}, "currency_mismatch"),
        ({"currency": "USD", "status": "closed"}, {"plan__currency": "USD"}, "organization_closed"),
        ({"currency": "USD"}, {"plan__currency": "USD", "plan__is_active": False}, "plan_inactive"),
    ],
)
def test_refusals_write_nothing(in_a, org, plan, code):
    with pytest.raises(DomainError) as err:
        subscription_create(
            actor=None, organization=OrganizationFactory(**org), plan_version=PlanVersionFactory(**plan)
        )
    assert err.value.code == code
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_a_subscription_that_starts_now_or_earlier_asks_for_a_billing_run_on_commit(
    in_a, django_capture_on_commit_callbacks, monkeypatch
):
    """Its first bill point (the in-advance fee) is due at once, so it is drafted within seconds
    rather than at the next hourly run; one that starts later waits for the run at its start."""
    from celery import current_app
    from django.db import connection

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, **kw: sent.append((name, kw["headers"])))
    version = PlanVersionFactory(plan__currency="EUR")
    with time_machine.travel(utc(2027, 1, 20, 15, 30), tick=False):
        for start in (None, utc(2027, 1, 20, 15, 30), utc(2027, 1, 2)):
            with django_capture_on_commit_callbacks(execute=True):
                subscription_create(
                    actor=None, organization=OrganizationFactory(currency="EUR"), plan_version=version, start_at=start
                )
        with django_capture_on_commit_callbacks(execute=True):
            subscription_create(
                actor=None,
                organization=OrganizationFactory(currency="EUR"),
                plan_version=version,
                start_at=utc(2027, 1, 20, 15, 31),
            )
    assert sent == [("invoicing.billing_run", {"_schema_name": connection.schema_name})] * 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "allowed"),
    [
        (utc(1997, 1, 20, 15, 30), False),  # decades back
        (utc(2026, 1, 20, 15, 29, 59), False),  # a second more than 365 days back
        (utc(2026, 1, 20, 15, 30), True),  # 365 days back: a year of bill points, within raw retention
        (utc(2028, 1, 20, 15, 30), True),
        (utc(2028, 1, 20, 15, 30, 1), False),
        (utc(2207, 1, 1), False),
    ],
)
def test_a_start_more_than_a_year_from_now_either_way_is_refused(in_a, start, allowed):
    organization = OrganizationFactory(currency="EUR")
    version = PlanVersionFactory(plan__currency="EUR")
    with time_machine.travel(utc(2027, 1, 20, 15, 30), tick=False):
        if allowed:
            assert subscription_create(actor=None, organization=organization, plan_version=version, start_at=start)
            return
        with pytest.raises(DomainError) as err:
            subscription_create(actor=None, organization=organization, plan_version=version, start_at=start)
    assert err.value.code == "start_at_out_of_range"
    assert err.value.message == (
        "start_at must be within 365 days of now: from 2026-01-20T15:30:00+00:00 to 2028-01-20T15:30:00+00:00."
    )
    assert not Subscription.objects.exists()
