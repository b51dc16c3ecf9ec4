"""Organizations in the Django admin write through the organization services, as the API does:
closing ends the live subscriptions (on a confirmation page), the currency is fixed once
subscribed, a country code must be an ISO 3166-1 country, and nothing is written on a refusal."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry

from billing.models import LIVE_STATUSES, Membership, Organization, Subscription
from tests.factories import OrganizationFactory, PlanVersionFactory, UserFactory, subscription_create

LIST = "/admin/billing/organization/"


@pytest.fixture
def subscribed(in_a):
    org = OrganizationFactory(external_id="acme", name="Acme", currency="USD", country="DE")
    sub = subscription_create(organization=org, plan_version=PlanVersionFactory())
    return org, sub


def form_data(org: Organization, **changes) -> dict:
    data = {
        "external_id": org.external_id,  # read-only on change now; the old form required it
        "name": org.name,
        "billing_email": org.billing_email,
        "currency": org.currency,
        "timezone": org.timezone,
        "country": org.country,
        "address_line1": "",
        "address_line2": "",
        "city": "",
        "region": "",
        "postal_code": "",
        "tax_id": "",
        "tax_exemption_reference": "",
        "metadata": "{}",
        "status": "active",  # read-only now; sent as the old form required it
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


def change_url(org: Organization) -> str:
    return f"{LIST}{org.pk}/change/"


@pytest.mark.django_db
def test_status_is_not_edited_by_hand_so_closing_cannot_skip_the_service(client_a, staff, subscribed):
    org, sub = subscribed
    staff()
    response = client_a.post(change_url(org), form_data(org, status="closed", name="Acme Corp"))
    assert response.status_code == 302
    org.refresh_from_db()
    sub.refresh_from_db()
    assert (org.name, org.status, sub.status) == ("Acme Corp", "active", "active")


@pytest.mark.django_db
def test_closing_in_the_admin_ends_the_subscriptions_after_a_confirmation(client_a, staff, subscribed):
    org, sub = subscribed
    user = staff()
    page = client_a.get(change_url(org)).content.decode()
    close_url = f"{LIST}{org.pk}/close/"
    assert close_url in page
    confirm = client_a.get(close_url)
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert f"#{sub.pk}" in text and "end now" in text and "final bill" in text
    org.refresh_from_db()
    assert org.status == "active"  # a GET changes nothing

    response = client_a.post(close_url)
    assert response.status_code == 302 and response["Location"] == change_url(org)
    org.refresh_from_db()
    sub.refresh_from_db()
    assert org.status == "closed"
    assert sub.status == "ended" and sub.ended_at is not None
    assert not Subscription.objects.filter(organization=org, status__in=LIVE_STATUSES).exists()
    ended = LogEntry.objects.get_for_object(sub).filter(changes__event__1="subscription.end").get()
    assert ended.actor == user
    # closed: no second close, and the change page offers none
    assert client_a.post(close_url).status_code == 302
    assert close_url not in client_a.get(change_url(org)).content.decode()


@pytest.mark.django_db
def test_viewers_cannot_close(client_a, staff, subscribed):
    org, _ = subscribed
    staff("viewer")
    assert client_a.post(f"{LIST}{org.pk}/close/").status_code == 403
    org.refresh_from_db()
    assert org.status == "active"


@pytest.mark.django_db
def test_organizations_are_not_deleted_in_the_admin(client_a, staff, subscribed):
    org, _ = subscribed
    staff("owner")
    assert client_a.post(f"{LIST}{org.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Organization.objects.filter(pk=org.pk).exists()


@pytest.mark.django_db
def test_currency_change_is_refused_on_the_form_once_subscribed(client_a, staff, subscribed):
    org, _ = subscribed
    staff()
    entries = LogEntry.objects.count()
    response = client_a.post(change_url(org), form_data(org, currency="EUR", name="Renamed"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["currency"] == [
        "The currency cannot change once the organization has a subscription."
    ]
    org.refresh_from_db()
    assert (org.currency, org.name) == ("USD", "Acme")
    assert LogEntry.objects.count() == entries


@pytest.mark.django_db
def test_currency_may_change_before_any_subscription(client_a, staff):
    org = OrganizationFactory(external_id="fresh", currency="USD")
    staff()
    response = client_a.post(change_url(org), form_data(org, currency="EUR"))
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.currency == "EUR"


@pytest.mark.django_db
@pytest.mark.parametrize("country", ["ZZ", "EU", "QO", "XA"])
def test_a_country_code_that_is_no_country_is_refused_on_change(client_a, staff, subscribed, country):
    org, _ = subscribed
    staff()
    response = client_a.post(change_url(org), form_data(org, country=country))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["country"] == [
        f"'{country}' is not an ISO 3166-1 alpha-2 country code (e.g. DE, US)."
    ]
    org.refresh_from_db()
    assert org.country == "DE"


@pytest.mark.django_db
def test_add_goes_through_the_service_and_refuses_zz(client_a, staff):
    staff()
    bad = client_a.post(
        f"{LIST}add/",
        {**form_data(Organization(currency="USD", timezone="UTC"), country="ZZ"), "external_id": "new", "name": "New"},
    )
    assert bad.status_code == 200
    assert "country" in bad.context["adminform"].form.errors
    assert not Organization.objects.filter(external_id="new").exists()

    member = UserFactory()
    data = {
        **form_data(Organization(currency="EUR", timezone="Europe/Berlin"), country="XK"),
        "external_id": "new",
        "name": "New",
        "memberships-TOTAL_FORMS": "1",
        "memberships-0-user": str(member.pk),
        "memberships-0-role": "billing",
    }
    response = client_a.post(f"{LIST}add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    org = Organization.objects.get(external_id="new")
    assert (org.currency, org.country, org.status) == ("EUR", "XK", "active")
    assert Membership.objects.get(organization=org).user == member


@pytest.mark.django_db
@pytest.mark.parametrize("metadata", ["[1, 2]", '"note"', "42"])
def test_metadata_that_is_no_object_is_a_form_error_and_nothing_is_written(client_a, staff, subscribed, metadata):
    """As the API refuses it (the PCI sweep found the admin answering a server error instead)."""
    org, _ = subscribed
    org.metadata = {"crm": "7"}
    org.save()
    staff()
    response = client_a.post(change_url(org), form_data(org, metadata=metadata, name="Acme Corp"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["metadata"] == ["metadata must be a JSON object."]
    org.refresh_from_db()
    assert (org.name, org.metadata) == ("Acme", {"crm": "7"})

    added = client_a.post(f"{LIST}add/", {**form_data(org, metadata=metadata), "external_id": "new", "name": "New"})
    assert added.status_code == 200
    assert added.context["adminform"].form.errors["metadata"] == ["metadata must be a JSON object."]
    assert not Organization.objects.filter(external_id="new").exists()


@pytest.mark.django_db
def test_an_emptied_metadata_box_is_no_metadata(client_a, staff, subscribed):
    """Not a NULL the database refuses (the PCI sweep's bare form sent it empty: a server error)."""
    org, _ = subscribed
    org.metadata = {"crm": "7"}
    org.save()
    staff()
    # The page carries the stored value in a hidden input (a field with a callable default):
    # the form compares the posted box with it.
    response = client_a.post(change_url(org), form_data(org, metadata="", **{"initial-metadata": '{"crm": "7"}'}))
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.metadata == {}

    added = client_a.post(f"{LIST}add/", {**form_data(org, metadata=""), "external_id": "new", "name": "New"})
    assert added.status_code == 302
    assert Organization.objects.get(external_id="new").metadata == {}
