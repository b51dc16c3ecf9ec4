"""The ASGI fast lane for the entitlement read (dunning.lane) through the real ASGI application,
against Django alone (config.asgi.django_asgi_app) for the same requests: the same status, body
and headers, whichever of the two answers. The lane answers the 200s; every refusal is Django's."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from config.asgi import application, django_asgi_app

pytestmark = pytest.mark.usefixtures("django_db_setup")


def call(app, host: str, path: str, *, token: str | None = None, method: str = "GET"):
    headers = [(b"host", host.encode()), (b"x-request-id", b"req-42")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))

    async def run():
        return await HttpCommunicator(app, method, path, headers=headers).get_response(timeout=10)

    response = async_to_sync(run)()
    return response["status"], response["body"], {name.lower(): value for name, value in response["headers"]}


@pytest.fixture
def seeded(committed_tenant, django_db_blocker):
    from accounts.services.api_key import apikey_create, apikey_revoke
    from billing.models import Organization
    from dunning.models import DunningAccount

    tenant, key = committed_tenant
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        Organization.objects.create(external_id="acme", name="Acme", currency="EUR")
        late = Organization.objects.create(external_id="zoë-late", name="Late", currency="EUR")
        DunningAccount.objects.create(
            organization=late, status="suspended", blocked_features=["plan_changes", "usage"],
            since=timezone.now(), reason="payment failed: invoice INV-000001",
        )  # fmt: skip
        ingest_only = apikey_create(name="ingest", scopes=["ingest"], actor=None).secret
        organization_key = apikey_create(name="acme's", scopes=["read"], actor=None, organization=late).secret
        revoked = apikey_create(name="old", scopes=["read"], actor=None)
        apikey_revoke(api_key=revoked.api_key, actor=None)
    connection.set_schema_to_public()
    keys = {"read": key, "ingest_only": ingest_only, "organization": organization_key, "revoked": revoked.secret}
    return tenant.get_primary_domain().domain, keys


def test_the_lane_answers_as_the_view_does(seeded, monkeypatch):
    from dunning import lane

    answered = []
    real = lane.entitlement_in_lane
    monkeypatch.setattr(lane, "entitlement_in_lane", lambda **kw: answered.append(real(**kw)) or answered[-1])
    host, keys = seeded
    cases = [
        (host, "/api/v1/organizations/acme/entitlement", keys["read"], 200),
        (host, "/api/v1/organizations/zoë-late/entitlement", keys["read"], 200),  # suspended, non-ASCII
        (host, "/api/v1/organizations/zoë-late/entitlement/", keys["read"], 404),
        (host, "/api/v1/organizations/nobody/entitlement", keys["read"], 404),
        (host, "/api/v1/organizations/acme/entitlement", keys["ingest_only"], 403),
        (host, "/api/v1/organizations/acme/entitlement", keys["organization"], 403),
        (host, "/api/v1/organizations/acme/entitlement", keys["revoked"], 401),
        (host, "/api/v1/organizations/acme/entitlement", "bk_unknown", 401),
        (host, "/api/v1/organizations/acme/entitlement", None, 401),
        ("nobody.localhost", "/api/v1/organizations/acme/entitlement", keys["read"], 404),
    ]
    for case_host, path, token, status in cases:
        through_lane = call(application, case_host, path, token=token)
        assert through_lane == call(django_asgi_app, case_host, path, token=token), path
        assert through_lane[0] == status, (path, token, through_lane)
    assert [body is not None for body in answered] == [True, True, False, False, False, False, False, False]

    answered.clear()
    status, body, headers = call(application, host, "/api/v1/organizations/acme/entitlement", token=keys["read"])
    assert (status, body) == (
        200,
        b'{"customer":"acme","status":"active","serve":true,"blocked_features":[],"blocked_meters":[],'
        b'"since":null,"reason":""}',
    )
    assert headers[b"x-request-id"] == b"req-42"
    assert len(answered) == 1  # from the lane, from the cache this time
