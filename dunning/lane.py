"""The ASGI fast lane for GET /api/v1/organizations/<external_id>/entitlement with an API key (the
pattern of metering.api.lane and payments.lane).

The seller's product asks this before serving a customer, and issue 12 wants the answer in p95 <
10 ms over HTTP. Through Django the view itself costs ~3 ms in process; the rest was the server
path (the middleware chain, the thread hop, a connection per request). This lane reads the
request itself, resolves the tenant and the key from the in-process caches, checks the key as
dunning.api.EntitlementView's permission does (the `read` scope; an organization's usage key is
not allowed there) and answers from the entitlement cache (dunning.selectors.entitlement_get) on a
small thread pool whose threads keep their connections.

It answers only what it can answer exactly as the view would, a 200: everything else (no tenant
at the host, an unknown, revoked or scope-less key, an organization the key cannot see, OAuth2
tokens and JWTs, other methods and paths, a database error) goes to Django unchanged, so every
refusal is the view's own (401/403/404 and their codes, the 503 of an outage).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from accounts.api.principal import ApiPrincipal
from accounts.models.api_key import KEY_PREFIX, APIKeyScope
from accounts.selectors.api_key import apikey_get_active
from billing.selectors.organization import organization_visible_get
from core.request_id import REQUEST_ID
from dunning.selectors import entitlement_get
from tenants.selectors import is_public, tenant_get_for_host

logger = logging.getLogger(__name__)
# Django's `<str:external_id>` (dunning.api.urlpatterns): one non-empty path segment.
PATH = re.compile(r"/api/v1/organizations/(?P<external_id>[^/]+)/entitlement")
# The view's answer carries these besides its body (Django's security and clickjacking
# middleware, DRF's Allow and Vary, django-guid's exposed request id): the test compares them.
# x-request-id is the client's when config.request_meta would keep it, else a new one.
HEADERS = [
    (b"content-type", b"application/json"),
    (b"vary", b"Cookie"),
    (b"allow", b"GET, HEAD, OPTIONS"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"access-control-expose-headers", b"X-Request-ID"),
]


def entitlement_in_lane(*, host: str, raw_key: str, external_id: str) -> dict | None:
    """Runs on a pool thread, with that thread's own database connection. The view's 200 body,
    or None to have Django answer."""
    try:
        if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
            connection.close()  # a connection broken by an earlier outage: reconnect
        connection.set_schema_to_public()
        tenant = tenant_get_for_host(host=host)
        if tenant is None or is_public(tenant):
            return None
        connection.set_tenant(tenant)
        key = apikey_get_active(raw_key=raw_key)
        # accounts.api.permissions.AccessPermission for read("billing.view_organization"): an API
        # key has no user, so its scopes alone decide, and an organization's key is refused.
        if key is None or APIKeyScope.READ not in key.scopes or key.organization_id is not None:
            return None
        principal = ApiPrincipal(
            kind="api_key", label=f"api_key:{key.name}", scopes=frozenset(key.scopes), key_id=key.pk
        )
        organization = organization_visible_get(principal=principal, external_id=external_id)
        if organization is None:
            return None
        return {"customer": organization.external_id, **entitlement_get(organization_id=organization.pk)}
    except (OperationalError, InterfaceError):
        logger.warning("database unavailable", exc_info=True)
        connection.close()
        return None  # Django answers the outage's 503 (or serves the request if it recovered)


def _request_id(given: bytes) -> str:
    text = given.decode("latin-1")
    return text if REQUEST_ID.fullmatch(text) else uuid.uuid4().hex


class EntitlementLane:
    def __init__(self, app):
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=settings.ENTITLEMENT_THREADS, thread_name_prefix="entitlement")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        match = PATH.fullmatch(scope["path"])
        if match is None or "\x00" in match["external_id"]:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(KEY_PREFIX):
            return await self.app(scope, receive, send)
        body = await asyncio.get_running_loop().run_in_executor(
            self.executor,
            lambda: entitlement_in_lane(
                host=headers.get(b"host", b"").decode("latin-1"), raw_key=token, external_id=match["external_id"]
            ),
        )
        if body is None:
            return await self.app(scope, receive, send)
        # DRF's JSONRenderer: compact, non-ASCII kept (UNICODE_JSON).
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    *HEADERS,
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-request-id", _request_id(headers.get(b"x-request-id", b"")).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return None
