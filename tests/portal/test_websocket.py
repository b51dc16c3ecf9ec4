"""The live-usage websocket: tenant resolved from the Host, the session user loaded inside that
tenant's schema, and a user joins only their own organization's group (real Redis channel layer)."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django_tenants.utils import tenant_context

from config.asgi import application
from metering.live import usage_group_name
from tests.factories import MembershipFactory, OrganizationFactory


@pytest.fixture(autouse=True)
def _keep_test_connection(monkeypatch):
    # Channels closes "old" connections around each database_sync_to_async call; inside a test's
    # rolled-back transaction that would close the one connection holding the test data. The ORM
    # calls still run for real, in the same thread (asgiref's thread-sensitive mode).
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


def _session_cookie(client, user) -> str:
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def _connect(host: str, cookie: str | None, query: str = ""):
    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/usage/{query}", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


@pytest.mark.django_db
def test_member_receives_updates_for_their_organization_only(tenant_a, client_a):
    with tenant_context(tenant_a):
        mine = MembershipFactory(organization__external_id="ws-mine")
        OrganizationFactory(external_id="ws-other")
        cookie = _session_cookie(client_a, mine.user)
    host = tenant_a.get_primary_domain().domain
    schema = tenant_a.schema_name

    async def scenario():
        communicator, connected, _ = await _connect(host, cookie)
        assert connected
        assert await communicator.receive_json_from(timeout=5) == {"type": "hello", "organization": "ws-mine"}
        layer = get_channel_layer()
        other = usage_group_name(schema_name=schema, external_id="ws-other")
        await layer.group_send(other, {"type": "usage.update", "meters": {"api_calls": "9"}, "at": "t0"})
        own = usage_group_name(schema_name=schema, external_id="ws-mine")
        await layer.group_send(own, {"type": "usage.update", "meters": {"api_calls": "42"}, "at": "t1"})
        # Only the own group's message arrives (the other one would have come first).
        assert await communicator.receive_json_from(timeout=5) == {
            "type": "usage",
            "meters": {"api_calls": "42"},
            "at": "t1",
        }
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

        # Asking for another organization by external id is refused.
        communicator, connected, code = await _connect(host, cookie, "?organization=ws-other")
        assert not connected and code == 4401

    async_to_sync(scenario)()


@pytest.mark.django_db
def test_session_of_a_is_refused_on_b_and_unknown_hosts_are_closed(tenant_a, tenant_b, client_a):
    with tenant_context(tenant_a):
        cookie = _session_cookie(client_a, MembershipFactory(organization__external_id="ws-a").user)
    with tenant_context(tenant_b):
        OrganizationFactory(external_id="ws-a")
    host_a, host_b = tenant_a.get_primary_domain().domain, tenant_b.get_primary_domain().domain

    async def scenario():
        _, connected, code = await _connect(host_b, cookie)
        assert not connected and code == 4401
        _, connected, _ = await _connect("nobody.localhost", cookie)
        assert not connected
        _, connected, code = await _connect(host_a, None)
        assert not connected and code == 4401

    async_to_sync(scenario)()
