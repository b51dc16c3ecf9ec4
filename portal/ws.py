"""The websocket stack under django-tenants (STACK-NOTES: Channels has no tenant support and the
stock AuthMiddlewareStack fails with 'relation "django_session" does not exist').

TenantMiddleware resolves the tenant from the Host header through the public Domain table and
refuses unknown hosts; TenantAuthMiddleware loads the session user inside that tenant's schema;
consumers wrap every ORM call in tenant_context and use group names that carry the schema.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.urls import path
from django_tenants.utils import get_public_schema_name, remove_www, tenant_context

from billing.models import Organization
from billing.selectors.usage import organization_usage_current
from metering.live import live_unwatch, live_watch, usage_group_name
from tenants.models import Domain

logger = logging.getLogger(__name__)
WS_CLOSE_UNKNOWN_HOST = 4404
WS_CLOSE_UNAUTHORIZED = 4401


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
        host = _header(scope, b"host").split(":")[0].lower()
        tenant = await _tenant_for_host(host)
        if tenant is None:
            await send({"type": "websocket.close", "code": WS_CLOSE_UNKNOWN_HOST})
            return None
        return await self.inner(dict(scope, tenant=tenant), receive, send)


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
        return await self.inner(dict(scope, user=user), receive, send)


@database_sync_to_async
def _member_organization(tenant, user, external_id: str | None):
    with tenant_context(tenant):
        qs = Organization.objects.filter(memberships__user=user)
        if external_id:
            qs = qs.filter(external_id=external_id)
        return qs.order_by("name").first()


class UsageConsumer(AsyncJsonWebsocketConsumer):
    """Live usage for one organization the signed-in user belongs to: the current period's
    value of every meter on connect and whenever the drainer reports new events for it."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=WS_CLOSE_UNAUTHORIZED)
            return
        from urllib.parse import parse_qs

        query = parse_qs(self.scope.get("query_string", b"").decode())
        requested = query.get("organization", [None])[0]
        organization = await _member_organization(self.scope["tenant"], user, requested)
        if organization is None:
            await self.close(code=WS_CLOSE_UNAUTHORIZED)
            return
        self.tenant = self.scope["tenant"]
        self.external_id = organization.external_id
        self.group = usage_group_name(schema_name=self.tenant.schema_name, external_id=self.external_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await _presence(live_watch, self.tenant.schema_name, self.external_id)
        await self.accept()
        await self.send_json({"type": "hello", "organization": self.external_id})
        await self.send_json(await _current_usage(self.tenant, self.external_id))

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await _presence(live_unwatch, self.tenant.schema_name, self.external_id)

    async def usage_changed(self, event):
        """The drainer stored new events for this organization (at most once a second)."""
        await self.send_json(await _current_usage(self.tenant, self.external_id))


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
