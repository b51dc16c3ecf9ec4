import pytest

from billing.models import Organization
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    PlanVersionFactory,
    subscription_create,
)
from tests.helpers import bearer, jwt_login


@pytest.mark.django_db
def test_create_read_update_close(client_a, writer):
    body = {"external_id": "acme-1", "name": "Acme", "currency": "EUR", "country": "DE", "timezone": "Europe/Berlin"}
    created = client_a.post("/api/v1/organizations", body, content_type="application/json", **bearer(writer))
    assert created.status_code == 201, created.content
    assert created.json()["external_id"] == "acme-1"
    assert created.json()["status"] == "active"

    got = client_a.get("/api/v1/organizations/acme-1", **bearer(writer))
    assert got.status_code == 200
    assert got.json()["currency"] == "EUR"

    patched = client_a.patch(
        "/api/v1/organizations/acme-1",
        {"billing_email": "ap@acme.example"},
        content_type="application/json",
        **bearer(writer),
    )
    assert patched.status_code == 200, patched.content
    assert Organization.objects.get(external_id="acme-1").billing_email == "ap@acme.example"

    closed = client_a.delete("/api/v1/organizations/acme-1", **bearer(writer))
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    assert Organization.objects.get(external_id="acme-1").status == "closed"


@pytest.mark.django_db
def test_invalid_fields_get_precise_errors_and_write_nothing(client_a, writer):
    body = {"external_id": "bad id!", "name": "", "currency": "XXQ", "timezone": "Mars/Olympus", "country": "de"}
    response = client_a.post("/api/v1/organizations", body, content_type="application/json", **bearer(writer))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"external_id", "name", "currency", "timezone", "country"}
    assert error["fields"]["currency"][0]["code"] == "invalid_currency"
    assert Organization.objects.count() == 0


@pytest.mark.django_db
def test_malformed_json_is_a_400_not_a_500(client_a, writer):
    response = client_a.post("/api/v1/organizations", "{not json", content_type="application/json", **bearer(writer))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    wrong_type = client_a.post("/api/v1/organizations", "a=b", content_type="text/plain", **bearer(writer))
    assert wrong_type.status_code == 415
    assert wrong_type.json()["error"]["code"] == "unsupported_media_type"
    not_object = client_a.post("/api/v1/organizations", "[1,2]", content_type="application/json", **bearer(writer))
    assert not_object.status_code == 400
    assert Organization.objects.count() == 0


@pytest.mark.django_db
def test_duplicate_external_id_is_refused(client_a, writer):
    OrganizationFactory(external_id="dup")
    body = {"external_id": "dup", "name": "Again", "currency": "USD"}
    response = client_a.post("/api/v1/organizations", body, content_type="application/json", **bearer(writer))
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["external_id"][0]["code"] == "unique"
    assert Organization.objects.filter(external_id="dup").count() == 1


@pytest.mark.django_db
def test_currency_is_locked_once_subscribed(client_a, writer):
    org = OrganizationFactory(external_id="subbed", currency="USD")
    subscription_create(organization=org, plan_version=PlanVersionFactory())
    response = client_a.patch(
        "/api/v1/organizations/subbed", {"currency": "EUR"}, content_type="application/json", **bearer(writer)
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "currency_locked"
    org.refresh_from_db()
    assert org.currency == "USD"


@pytest.mark.django_db
def test_member_sees_only_their_organizations_over_the_api(in_a, client_a):
    mine = MembershipFactory(organization__external_id="mine")
    OrganizationFactory(external_id="theirs")
    token = jwt_login(client_a, email=mine.user.email)

    listing = client_a.get("/api/v1/organizations", **bearer(token))
    assert [o["external_id"] for o in listing.json()["results"]] == ["mine"]
    assert client_a.get("/api/v1/organizations/mine", **bearer(token)).status_code == 200
    other = client_a.get("/api/v1/organizations/theirs", **bearer(token))
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "not_found"
    # members read; they do not write
    write = client_a.patch(
        "/api/v1/organizations/mine", {"name": "X"}, content_type="application/json", **bearer(token)
    )
    assert write.status_code == 403


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served_locally(client_a):
    schema = client_a.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/v1/organizations/{external_id}" in schema.json()["paths"]
    docs = client_a.get("/api/docs/")
    assert docs.status_code == 200
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs.content
    assert b"cdn" not in docs.content.lower()
