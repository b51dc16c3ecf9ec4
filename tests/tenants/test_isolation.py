"""Nothing crosses tenants: data, API keys, OAuth2 tokens, JWTs, session cookies, admin rows."""

import pytest
from allauth.idp.oidc.models import Client as OIDCClient
from django.conf import settings
from django_tenants.utils import tenant_context

from billing.models import Organization
from tests.factories import APIKeyFactory, MembershipFactory, OrganizationFactory, UserFactory, totp_enable
from tests.helpers import bearer, jwt_login, staff_login


@pytest.mark.django_db
def test_same_external_id_in_two_tenants_is_two_organizations(tenant_a, tenant_b):
    with tenant_context(tenant_a):
        OrganizationFactory(external_id="acme", name="Acme at A")
    with tenant_context(tenant_b):
        OrganizationFactory(external_id="acme", name="Acme at B")
        assert list(Organization.objects.values_list("name", flat=True)) == ["Acme at B"]
    with tenant_context(tenant_a):
        assert list(Organization.objects.values_list("name", flat=True)) == ["Acme at A"]


@pytest.mark.django_db
def test_api_key_of_a_is_refused_on_b(tenant_a, tenant_b, client_a, client_b):
    with tenant_context(tenant_a):
        secret = APIKeyFactory(name="a", scopes=["read", "write"]).secret
    assert client_a.get("/api/v1/organizations", **bearer(secret)).status_code == 200
    response = client_b.get("/api/v1/organizations", **bearer(secret))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def _oauth_token(client, *, client_id: str, secret: str) -> str:
    response = client.post(
        "/identity/o/api/token",
        {"grant_type": "client_credentials", "scope": "read write", "client_id": client_id, "client_secret": secret},
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


@pytest.mark.django_db
def test_oauth2_client_credentials_token_of_a_is_refused_on_b(tenant_a, tenant_b, client_a, client_b):
    with tenant_context(tenant_a):
        oidc = OIDCClient(name="a-machine", id="a-machine-client", type=OIDCClient.Type.CONFIDENTIAL)
        oidc.set_secret("a-machine-secret")
        oidc.set_scopes(["read", "write"])
        oidc.set_grant_types(["client_credentials"])
        oidc.save()
        OrganizationFactory(external_id="acme")
    token = _oauth_token(client_a, client_id="a-machine-client", secret="a-machine-secret")

    ok = client_a.get("/api/v1/organizations/acme", **bearer(token))
    assert ok.status_code == 200, ok.content
    assert ok.json()["external_id"] == "acme"
    refused = client_b.get("/api/v1/organizations", **bearer(token))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_token"
    # and the client itself does not exist on B
    unknown = client_b.post(
        "/identity/o/api/token",
        {"grant_type": "client_credentials", "client_id": "a-machine-client", "client_secret": "a-machine-secret"},
    )
    assert unknown.status_code == 401
    assert unknown.json()["error"] == "invalid_client"


@pytest.mark.django_db
def test_jwt_of_a_is_refused_on_b(tenant_a, tenant_b, client_a, client_b):
    with tenant_context(tenant_a):
        member = MembershipFactory(organization__external_id="acme").user
    # The same email and pk may exist on B: the token still must not work there.
    with tenant_context(tenant_b):
        UserFactory(email=member.email)
        OrganizationFactory(external_id="acme")
    token = jwt_login(client_a, email=member.email)

    ok = client_a.get("/api/v1/organizations", **bearer(token))
    assert ok.status_code == 200
    assert [o["external_id"] for o in ok.json()["results"]] == ["acme"]
    refused = client_b.get("/api/v1/organizations", **bearer(token))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_token"


@pytest.mark.django_db
def test_session_cookie_of_a_is_anonymous_on_b(tenant_a, tenant_b, client_a, client_b):
    with tenant_context(tenant_a):
        member = MembershipFactory(organization__external_id="acme").user
        client_a.force_login(member)
    session_cookie = client_a.cookies[settings.SESSION_COOKIE_NAME].value
    assert client_a.get("/organizations/acme/").status_code == 200

    client_b.cookies[settings.SESSION_COOKIE_NAME] = session_cookie
    response = client_b.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert client_b.get("/api/v1/organizations").status_code == 401


@pytest.mark.django_db
def test_admin_of_a_sees_only_a_rows(tenant_a, tenant_b, client_a):
    with tenant_context(tenant_b):
        b_org = OrganizationFactory(external_id="only-in-b", name="Bravo Only")
    with tenant_context(tenant_a):
        OrganizationFactory(external_id="only-in-a", name="Alpha Only")
        staff = UserFactory(staff_role="owner")
        secret = totp_enable(staff)
        staff_login(client_a, email=staff.email, totp_secret=secret)
    listing = client_a.get("/admin/billing/organization/")
    assert listing.status_code == 200
    assert b"Alpha Only" in listing.content
    assert b"Bravo Only" not in listing.content and b"only-in-b" not in listing.content
    change = client_a.get(f"/admin/billing/organization/{b_org.pk}/change/")
    assert change.status_code == 302  # admin's "does not exist" redirect to its index
    assert b"Bravo" not in client_a.get(change["Location"]).content
