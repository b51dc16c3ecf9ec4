import pytest
from auditlog.models import LogEntry

from billing.models import Organization
from tests.factories import APIKeyFactory, OrganizationFactory, UserFactory, totp_enable
from tests.helpers import bearer, staff_login


@pytest.mark.django_db
def test_api_change_is_audited_with_the_api_key_as_origin(in_a, client_a):
    key = APIKeyFactory(name="crm-sync", scopes=["read", "write"])
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
    key = APIKeyFactory(name="reader", scopes=["read"])
    before = LogEntry.objects.count()
    client_a.post(
        "/api/v1/organizations",
        {"external_id": "x", "name": "X", "currency": "USD"},
        content_type="application/json",
        **bearer(key.secret),
    )
    assert LogEntry.objects.count() == before
    assert not Organization.objects.filter(external_id="x").exists()


@pytest.mark.django_db
def test_services_attribute_their_entries_to_the_actor_they_are_given(in_a):
    # Outside any request: the actor argument is all the audit log learns of who did it.
    from accounts.services.api_key import apikey_revoke
    from billing.services.organization import organization_create, organization_update
    from metering.models import Meter
    from metering.services.meter import meter_create, meter_delete

    staff = UserFactory(staff_role="admin")
    org = organization_create(actor=staff, external_id="aud-3", name="Made", currency="USD")
    organization_update(actor=staff, organization=org, name="Renamed")
    meter = meter_create(actor=staff, code="calls", name="Calls", event_type="api_call", aggregation="count")
    meter_delete(actor=staff, meter=Meter.objects.get(pk=meter.pk))
    key = APIKeyFactory(name="k", scopes=["read"], actor=staff)
    apikey_revoke(api_key=key.api_key, actor=staff)
    entries = [
        *LogEntry.objects.get_for_object(org),
        *LogEntry.objects.filter(object_pk=str(meter.pk), content_type__model="meter"),
        *LogEntry.objects.get_for_object(key.api_key),
    ]
    created, updated, deleted = LogEntry.Action.CREATE, LogEntry.Action.UPDATE, LogEntry.Action.DELETE
    # organization: created, updated; meter: created, deleted; API key: created, revoked
    assert sorted(e.action for e in entries) == sorted([created, updated, created, deleted, created, updated])
    assert {e.actor_id for e in entries} == {staff.pk}
