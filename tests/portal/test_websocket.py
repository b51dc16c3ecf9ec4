"""The live-usage websocket: tenant resolved from the Host, the session user loaded inside that
tenant's schema, and a user joins only their own organization's group (real Redis channel layer)."""

from datetime import UTC, datetime

import msgspec
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from config.asgi import application
from metering.live import live_watched, usage_group_name
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from tests.factories import MembershipFactory, MeterFactory, OrganizationFactory, UserFactory, totp_enable
from tests.helpers import staff_login


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


async def _connect(host: str, cookie: str | None, query: str = "", origin: str | None = ""):
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", (origin or f"http://{host}").encode()))
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/usage/{query}", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


@pytest.mark.django_db
def test_member_receives_updates_for_their_organization_only(tenant_a, client_a):
    with tenant_context(tenant_a):
        MeterFactory(name="Calls", event_type="call")
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


@pytest.mark.django_db
def test_only_this_hosts_own_origin_may_open_a_socket(tenant_a, tenant_b, client_a):
    with tenant_context(tenant_a):
        cookie = _session_cookie(client_a, MembershipFactory(organization__external_id="ws-o").user)
    host_a, host_b = tenant_a.get_primary_domain().domain, tenant_b.get_primary_domain().domain

    async def scenario():
        # A page on a sibling tenant's host (also in ALLOWED_HOSTS) must not use A's cookie.
        for origin in (f"http://{host_b}", f"http://{host_a}:9999", f"ftp://{host_a}"):
            _, connected, code = await _connect(host_a, cookie, origin=origin)
            assert (connected, code) == (False, 4403), origin
        # Hosts outside ALLOWED_HOSTS, and no Origin at all, are refused before (channels' validator).
        for origin in ("https://evil.example", "null", None):
            _, connected, _ = await _connect(host_a, cookie, origin=origin)
            assert not connected, origin
        communicator, connected, _ = await _connect(host_a, cookie, origin=f"http://{host_a}")
        assert connected
        await communicator.disconnect()

    async_to_sync(scenario)()


def _revoke(tenant, how: str, user, client) -> None:
    with tenant_context(tenant):
        if how == "logout":
            client.logout()
        elif how == "deactivation":
            get_user_model().objects.filter(pk=user.pk).update(is_active=False)
        else:
            user.memberships.all().delete()


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["logout", "deactivation", "membership"])
def test_streaming_stops_when_the_user_may_no_longer_watch(tenant_a, client_a, how):
    with tenant_context(tenant_a):
        MeterFactory(name="Calls", event_type="call")
        member = MembershipFactory(organization__external_id="ws-live").user
        cookie = _session_cookie(client_a, member)
    host = tenant_a.get_primary_domain().domain
    group = usage_group_name(schema_name=tenant_a.schema_name, external_id="ws-live")

    async def scenario():
        communicator, connected, _ = await _connect(host, cookie)
        assert connected
        await communicator.receive_json_from(timeout=5)  # hello
        await communicator.receive_json_from(timeout=5)  # usage
        await sync_to_async(_revoke)(tenant_a, how, member, client_a)
        await get_channel_layer().group_send(group, {"type": "usage.changed", "customer": "ws-live"})
        # No figures: the socket is closed instead.
        assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
        assert "ws-live" not in await sync_to_async(live_watched)(schema_name=tenant_a.schema_name)
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db
def test_an_idle_socket_is_closed_at_the_next_revalidation(tenant_a, client_a, monkeypatch):
    from portal.ws import UsageConsumer

    monkeypatch.setattr(UsageConsumer, "revalidate_seconds", 0.2)
    with tenant_context(tenant_a):
        member = MembershipFactory(organization__external_id="ws-idle").user
        cookie = _session_cookie(client_a, member)
    host = tenant_a.get_primary_domain().domain

    async def scenario():
        communicator, connected, _ = await _connect(host, cookie)
        assert connected
        await communicator.receive_json_from(timeout=5)
        await communicator.receive_json_from(timeout=5)
        assert await communicator.receive_nothing(timeout=0.5)  # revalidated, still allowed
        await sync_to_async(_revoke)(tenant_a, "logout", member, client_a)
        assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db
def test_staff_without_a_passed_second_factor_are_refused(tenant_a, client_a):
    """Even a staff user who is also a member: no second factor, no socket."""
    with tenant_context(tenant_a):
        staff = UserFactory(staff_role="support")
        secret = totp_enable(staff)
        MembershipFactory(user=staff, organization__external_id="ws-staff")
        password_only = _session_cookie(client_a, staff)
        browser = Client(HTTP_HOST=tenant_a.get_primary_domain().domain)
        staff_login(browser, email=staff.email, totp_secret=secret)
        with_mfa = browser.cookies[settings.SESSION_COOKIE_NAME].value
    host = tenant_a.get_primary_domain().domain

    async def scenario():
        _, connected, code = await _connect(host, password_only)
        assert (connected, code) == (False, 4403)
        communicator, connected, _ = await _connect(host, with_mfa)
        assert connected
        await communicator.disconnect()

    async_to_sync(scenario)()
