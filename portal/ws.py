"""The websocket stack under django-tenants (STACK-NOTES: Channels has no tenant support and the
stock AuthMiddlewareStack fails with 'relation "django_session" does not exist').

TenantMiddleware resolves the tenant from the Host header through the public Domain table and
refuses unknown hosts, and refuses any Origin but the Host itself (a page on a sibling tenant's
host must not open a socket with this host's cookie); TenantAuthMiddleware loads the session user
inside that tenant's schema; consumers wrap every ORM call in tenant_context and use group names
that carry the schema.

Close codes: 4404 unknown host; 4401 not signed in, session ended (logout, deactivation, password
change) or not a member of the organization; 4403 refused although signed in: a foreign Origin, or
a staff user whose session did not pass the second factor.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.urls import path
from django_tenants.utils import get_public_schema_name, remove_www, tenant_context

from accounts.selectors.staff import StaffAccess, staff_session_access_get
from billing.models import Membership, Organization
from billing.selectors.usage import organization_usage_current
from metering.live import live_unwatch, live_watch, usage_group_name
from tenants.models import Domain

logger = logging.getLogger(__name__)
WS_CLOSE_UNKNOWN_HOST = 4404
WS_CLOSE_UNAUTHORIZED = 4401
WS_CLOSE_FORBIDDEN = 4403


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


@database_sync_to_async
def _tenant_for_host(host: str):
    domain = Domain.objects.select_related("tenant").filter(domain=remove_www(host)).first()
    if domain is None or domain.tenant.schema_name == get_public_schema_name():
        return None
    return domain.tenant


class TenantMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        netloc = _header(scope, b"host").lower()
        tenant = await _tenant_for_host(netloc.split(":")[0])
        if tenant is None:
            await send({"type": "websocket.close", "code": WS_CLOSE_UNKNOWN_HOST})
            return None
        if not _same_origin(_header(scope, b"origin"), netloc):
            await send({"type": "websocket.close", "code": WS_CLOSE_FORBIDDEN})
            return None
        return await self.inner(dict(scope, tenant=tenant), receive, send)


def _same_origin(origin: str, netloc: str) -> bool:
    """The Origin names exactly the host (and port) the socket was opened on. Browsers always
    send it on websockets; settings.ALLOWED_HOSTS admits every tenant's host, so checking against
    it (channels' AllowedHostsOriginValidator) would let a sibling tenant's page in."""
    try:
        parsed = urlparse(origin)
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(netloc) and parsed.netloc.lower() == netloc


@database_sync_to_async
def _session_user(tenant, session_key: str):
    with tenant_context(tenant):
        session = SessionStore(session_key)
        # get_user checks the session's auth hash, as a normal request would.
        user = get_user(SimpleNamespace(session=session))
        return user


class TenantAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        from django.http.cookie import parse_cookie

        cookies = parse_cookie(_header(scope, b"cookie"))
        session_key = cookies.get(settings.SESSION_COOKIE_NAME)
        user = await _session_user(scope["tenant"], session_key) if session_key else AnonymousUser()
        return await self.inner(dict(scope, user=user, session_key=session_key), receive, send)


@database_sync_to_async
def _organization_to_watch(tenant, user, session_key: str, external_id: str | None) -> tuple[Organization | None, int]:
    """The organization this connection may watch, or the close code that refuses it."""
    with tenant_context(tenant):
        if user.is_staff:
            # Staff power over this socket (none today: it serves members) needs the second factor.
            access = staff_session_access_get(user=user, session=SessionStore(session_key))
            if access is not StaffAccess.GRANTED:
                return None, WS_CLOSE_FORBIDDEN
        qs = Organization.objects.filter(memberships__user=user)
        if external_id:
            qs = qs.filter(external_id=external_id)
        organization = qs.order_by("name").first()
        return organization, WS_CLOSE_UNAUTHORIZED


@database_sync_to_async
def _still_allowed(tenant, user_id: int, session_key: str, external_id: str) -> int | None:
    """None while the connection's session is alive, still its user's, and the user an active
    member of the organization; else the close code."""
    with tenant_context(tenant):
        user = get_user(SimpleNamespace(session=SessionStore(session_key)))
        if not user.is_authenticated or user.pk != user_id:  # logged out, deactivated, password changed
            return WS_CLOSE_UNAUTHORIZED
        if not Membership.objects.filter(user_id=user_id, organization__external_id=external_id).exists():
            return WS_CLOSE_UNAUTHORIZED
    return None


class UsageConsumer(AsyncJsonWebsocketConsumer):
    """Live usage for one organization the signed-in user belongs to: the current period's
    value of every meter on connect and whenever the drainer reports new events for it.

    A socket outlives the checks made when it opened, so they are made again before every push
    and every `revalidate_seconds` in between: after a logout, a deactivation or the loss of the
    membership nothing more is sent and the socket is closed (4401). The periodic round also
    renews the organization's presence, which expires after metering.live.PRESENCE_SECONDS."""

    revalidate_seconds = 60

    async def connect(self):
        user = self.scope.get("user")
        session_key = self.scope.get("session_key")
        if user is None or not user.is_authenticated or not session_key:
            await self.close(code=WS_CLOSE_UNAUTHORIZED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        requested = query.get("organization", [None])[0]
        organization, refusal = await _organization_to_watch(self.scope["tenant"], user, session_key, requested)
        if organization is None:
            await self.close(code=refusal)
            return
        self.tenant = self.scope["tenant"]
        self.user_id = user.pk
        self.session_key = session_key
        self.external_id = organization.external_id
        self.group = usage_group_name(schema_name=self.tenant.schema_name, external_id=self.external_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await _presence(live_watch, self.tenant.schema_name, self.external_id)
        await self.accept()
        await self.send_json({"type": "hello", "organization": self.external_id})
        await self.send_json(await _current_usage(self.tenant, self.external_id))
        self.revalidation = asyncio.create_task(self._revalidate_periodically())

    async def disconnect(self, code):
        if getattr(self, "revalidation", None):
            self.revalidation.cancel()
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await _presence(live_unwatch, self.tenant.schema_name, self.external_id)
            self.group = None

    async def usage_changed(self, event):
        """The drainer stored new events for this organization (at most once a second)."""
        if await self._allowed():
            # `changed`: new events, not the figures sent on connect (the portal page re-reads
            # its priced panel on it).
            await self.send_json(dict(await _current_usage(self.tenant, self.external_id), changed=True))

    async def _allowed(self) -> bool:
        if getattr(self, "group", None) is None:
            return False  # already refused and closing
        refusal = await _still_allowed(self.tenant, self.user_id, self.session_key, self.external_id)
        if refusal is None:
            return True
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await _presence(live_unwatch, self.tenant.schema_name, self.external_id)
        self.group = None
        await self.close(code=refusal)
        return False

    async def _revalidate_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.revalidate_seconds)
            try:
                if not await self._allowed():
                    return
            except Exception:
                # The database is unreachable: try again next round (pushes check for themselves).
                logger.warning("websocket revalidation failed", exc_info=True)
                continue
            await _presence(live_watch, self.tenant.schema_name, self.external_id)


async def _presence(func, schema_name: str, external_id: str) -> None:
    try:
        await sync_to_async(func, thread_sensitive=False)(schema_name=schema_name, external_id=external_id)
    except Exception:
        logger.warning("live usage presence unavailable", exc_info=True)


@database_sync_to_async
def _current_usage(tenant, external_id: str) -> dict:
    with tenant_context(tenant):
        usage = organization_usage_current(organization=Organization.objects.get(external_id=external_id))
    return {
        "type": "usage",
        "from": usage.start.isoformat(),
        "to": usage.end.isoformat(),
        "meters": {code: None if value is None else str(value) for code, value in usage.meters.items()},
    }


websocket_urlpatterns = [path("ws/usage/", UsageConsumer.as_asgi())]
