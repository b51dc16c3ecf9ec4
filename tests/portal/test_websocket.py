"""The live-usage websocket: tenant resolved from the Host, the session user loaded inside that
tenant's schema, and a user joins only their own organization's group (real Redis channel layer)."""

from datetime import UTC, datetime

import msgspec
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django_tenants.utils import schema_context, tenant_context

from config.asgi import application
from metering.live import live_watched, usage_group_name
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from metering.services.meter import meter_create
from tests.factories import MembershipFactory, OrganizationFactory


@pytest.fixture(autouse=True)
def _keep_test_connection(monkeypatch):
    # Channels closes "old" connections around each database_sync_to_async call; inside a test's
    # rolled-back transaction that would close the one connection holding the test data. The ORM
    # calls still run for real, in the same thread (asgiref's thread-sensitive mode).
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


def store_calls(schema: str, customer: str, n: int) -> None:
    now = datetime.now(UTC)
    with schema_context(schema):
        events = [(f"{customer}-{i}", customer, "call", now, msgspec.Raw(b"{}")) for i in range(n)]
        landing_store(events=events, received_at=now)
        drain_once(max_events=100)


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
        meter_create(actor=None, code="calls", name="Calls", event_type="call", aggregation="count")
        mine = MembershipFactory(organization__external_id="ws-mine")
        OrganizationFactory(external_id="ws-other")
        cookie = _session_cookie(client_a, mine.user)
    host = tenant_a.get_primary_domain().domain
    schema = tenant_a.schema_name

    async def scenario():
        communicator, connected, _ = await _connect(host, cookie)
        assert connected
        assert await communicator.receive_json_from(timeout=5) == {"type": "hello", "organization": "ws-mine"}
        initial = await communicator.receive_json_from(timeout=5)
        assert initial["type"] == "usage" and initial["meters"] == {"calls": "0"}
        assert "ws-mine" in await sync_to_async(live_watched)(schema_name=schema)
        layer = get_channel_layer()
        other = usage_group_name(schema_name=schema, external_id="ws-other")
        await layer.group_send(other, {"type": "usage.changed", "customer": "ws-other"})
        await sync_to_async(store_calls)(schema, "ws-mine", 3)
        own = usage_group_name(schema_name=schema, external_id="ws-mine")
        await layer.group_send(own, {"type": "usage.changed", "customer": "ws-mine"})
        # Only the own group's message arrives (the other one would have come first).
        update = await communicator.receive_json_from(timeout=5)
        assert update["type"] == "usage" and update["meters"] == {"calls": "3"}
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        assert "ws-mine" not in await sync_to_async(live_watched)(schema_name=schema)

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
