import pytest
from auditlog.models import LogEntry

from accounts.services.api_key import apikey_create
from billing.models import Organization
from tests.factories import OrganizationFactory, UserFactory, totp_enable
from tests.helpers import bearer, staff_login


@pytest.mark.django_db
def test_api_change_is_audited_with_the_api_key_as_origin(in_a, client_a):
    key = apikey_create(name="crm-sync", scopes=["read", "write"], actor=None)
    body = {"external_id": "aud-1", "name": "Audited", "currency": "USD"}
    assert (
        client_a.post("/api/v1/organizations", body, content_type="application/json", **bearer(key.secret)).status_code
        == 201
    )
    client_a.patch(
        "/api/v1/organizations/aud-1", {"name": "Renamed"}, content_type="application/json", **bearer(key.secret)
    )

    org = Organization.objects.get(external_id="aud-1")
    entries = list(LogEntry.objects.get_for_object(org).order_by("timestamp"))
    assert [e.action for e in entries] == [LogEntry.Action.CREATE, LogEntry.Action.UPDATE]
    update = entries[1]
    assert update.changes_dict["name"] == ["Audited", "Renamed"]
    assert update.actor is None
    assert update.additional_data == {"origin": "api_key", "api_key": "crm-sync", "api_key_prefix": key.api_key.prefix}
    assert update.remote_addr == "127.0.0.1"
    assert update.cid  # the request id


@pytest.mark.django_db
def test_admin_change_is_audited_with_the_staff_user(in_a, client_a):
    org = OrganizationFactory(external_id="aud-2", name="Before", currency="USD")
    staff = UserFactory(staff_role="support")
    staff_login(client_a, email=staff.email, totp_secret=totp_enable(staff))
    form = {
        "external_id": "aud-2",
        "name": "After",
        "billing_email": "",
        "currency": "USD",
        "timezone": "UTC",
        "country": "",
        "address_line1": "",
        "address_line2": "",
        "city": "",
        "region": "",
        "postal_code": "",
        "tax_id": "",
        "status": "active",
        "metadata": "{}",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    response = client_a.post(f"/admin/billing/organization/{org.pk}/change/", form)
    assert response.status_code == 302, response.content[:3000]

    entry = LogEntry.objects.get_for_object(org).get(action=LogEntry.Action.UPDATE)
    assert entry.actor == staff
    assert entry.actor_email == staff.email
    assert entry.changes_dict == {"name": ["Before", "After"]}


@pytest.mark.django_db
def test_refused_request_writes_no_audit_entry(in_a, client_a):
    key = apikey_create(name="reader", scopes=["read"], actor=None)
    before = LogEntry.objects.count()
    client_a.post(
        "/api/v1/organizations",
        {"external_id": "x", "name": "X", "currency": "USD"},
        content_type="application/json",
        **bearer(key.secret),
    )
    assert LogEntry.objects.count() == before
    assert not Organization.objects.filter(external_id="x").exists()
