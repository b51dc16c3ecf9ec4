"""Staff change subscriptions, coupons and credit in the Django admin through the services: a
preview first, then the confirmed change, audited with the staff user."""

from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry

from billing.models import Coupon, CreditEntry, PlanVersion, Subscription, SubscriptionPhase
from invoicing.services.billing_run import billing_run
from tests.factories import OrganizationFactory, PlanFactory, SubscriptionFactory
from tests.helpers import utc


@pytest.fixture
def subscription(in_a):
    org = OrganizationFactory(external_id="acme", currency="USD")
    for code, fee in (("basic", "30.00"), ("pro", "60.00")):
        PlanFactory(code=code, currency="USD", base_fee=fee)
    with time_machine.travel(utc(2027, 4, 1), tick=False):
        sub = SubscriptionFactory(organization=org, plan="basic")
        billing_run(at=utc(2027, 4, 1))  # April's fee invoiced: what a credit can give back
    return sub


@pytest.mark.django_db
def test_change_plan_in_the_admin_previews_then_confirms(client_a, staff, subscription):
    pro = PlanVersion.objects.get(plan__code="pro")
    url = f"/admin/billing/subscription/{subscription.pk}/change-plan/"
    with time_machine.travel(utc(2027, 4, 11), tick=True):
        user = staff("finance")  # signed in then: sessions expire
        assert client_a.get(url).status_code == 200
        entries = LogEntry.objects.count()
        response = client_a.post(url, {"plan_version": pro.pk, "timing": ""})
        assert response.status_code == 200
        page = response.content.decode()
        assert "Unused time on Basic after 2027-04-11" in page and "-$20.00" in page and "$40.00" in page
        assert LogEntry.objects.count() == entries and SubscriptionPhase.objects.count() == 1
        shown = response.context["fingerprint"]
        # a confirmation of something else than what was shown is shown again, not done
        stale = client_a.post(url, {"plan_version": pro.pk, "timing": "period_end", "confirm": shown})
        assert stale.status_code == 200 and "The bill changed since it was shown" in stale.content.decode()
        assert LogEntry.objects.count() == entries and SubscriptionPhase.objects.count() == 1
        response = client_a.post(url, {"plan_version": pro.pk, "timing": "", "confirm": shown})
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.plan_version == pro
    event = LogEntry.objects.get_for_object(subscription).filter(changes__event__1="subscription.upgrade").get()
    assert event.actor == user


@pytest.mark.django_db
def test_viewer_cannot_change_and_refusals_are_shown(client_a, staff, subscription):
    staff("viewer")
    url = f"/admin/billing/subscription/{subscription.pk}/cancel/"
    assert client_a.post(url, {"at_period_end": "0", "confirm": "1"}).status_code == 403
    assert Subscription.objects.get().status == "active"


@pytest.mark.django_db
def test_cancel_in_the_admin_and_a_refused_resume(client_a, staff, subscription):
    with time_machine.travel(utc(2027, 4, 21), tick=True):
        staff("admin")
        url = f"/admin/billing/subscription/{subscription.pk}/cancel/"
        shown = client_a.post(url, {"at_period_end": "0"}).context["fingerprint"]
        response = client_a.post(url, {"at_period_end": "0", "confirm": shown})
        assert response.status_code == 302
        response = client_a.post(f"/admin/billing/subscription/{subscription.pk}/resume/", follow=True)
    assert "Only a cancellation scheduled for the period end can be taken back." in response.content.decode()
    assert Subscription.objects.get().status == "canceled"


@pytest.mark.django_db
def test_coupon_and_credit_grant_in_the_admin(client_a, staff, subscription):
    user = staff("finance")
    response = client_a.post(
        "/admin/billing/coupon/add/",
        {
            "code": "HALF",
            "name": "Half off",
            "discount_type": "percentage",
            "percent_off": "50",
            "currency": "",
            "duration": "repeating",
            "duration_periods": "3",
            "applies_to": "invoice",
            "meter_codes": "",
            "is_active": "on",
            "redemptions-TOTAL_FORMS": "0",
            "redemptions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    coupon = Coupon.objects.get()
    assert (coupon.percent_off, coupon.duration_periods) == (Decimal("50"), 3)
    response = client_a.post(
        "/admin/billing/creditentry/add/",
        {
            "organization": subscription.organization.pk,
            "kind": "promotional",
            "amount": "12.50",
            "description": "Sorry",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    grant = CreditEntry.objects.get()
    assert (grant.amount, grant.currency, grant.kind, grant.created_by) == (
        Decimal("12.50"),
        "USD",
        "promotional",
        user,
    )
    refused = client_a.post(
        "/admin/billing/creditentry/add/",
        {"organization": subscription.organization.pk, "kind": "promotional", "amount": "-3.00"},
        follow=True,
    )
    assert "amount must be positive" in refused.content.decode()
    assert CreditEntry.objects.count() == 1


@pytest.mark.django_db
def test_resume_link_shows_a_confirmation_and_the_post_takes_the_cancellation_back(client_a, staff, subscription):
    from billing.services.subscription import subscription_cancel

    with time_machine.travel(utc(2027, 4, 21), tick=True):
        subscription_cancel(actor=None, subscription=subscription, at_period_end=True)
        user = staff("admin")
        change = client_a.get(f"/admin/billing/subscription/{subscription.pk}/change/").content.decode()
        url = f"/admin/billing/subscription/{subscription.pk}/resume/"
        assert f'href="{url}"' in change
        page = client_a.get(url)  # what the "Resume" link does
        assert page.status_code == 200
        text = page.content.decode()
        assert "it ends on" in text and "2027-05-01 00:00" in text and 'value="Resume the subscription"' in text
        subscription.refresh_from_db()
        assert subscription.cancel_at_period_end is True  # a GET changes nothing
        response = client_a.post(url)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/billing/subscription/{subscription.pk}/change/"
    subscription.refresh_from_db()
    assert (subscription.cancel_at_period_end, subscription.ended_at, subscription.canceled_at) == (False, None, None)
    assert subscription.status == "active"
    assert SubscriptionPhase.objects.get(subscription=subscription).ends_at is None
    event = LogEntry.objects.get_for_object(subscription).filter(changes__event__1="subscription.resume").get()
    assert event.actor == user


@pytest.mark.django_db
def test_resume_page_of_a_subscription_without_a_scheduled_cancellation_offers_nothing(client_a, staff, subscription):
    staff("admin")
    page = client_a.get(f"/admin/billing/subscription/{subscription.pk}/resume/")
    assert page.status_code == 200
    assert "there is nothing to resume" in page.content.decode()
    assert 'value="Resume the subscription"' not in page.content.decode()
