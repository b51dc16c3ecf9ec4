"""The ASGI fast lane for POST /api/v1/events with an API key.

Django runs a sync view on one thread per worker behind its whole middleware chain (about 1 ms a
request here, and one commit at a time per worker). This lane reads the request itself, resolves
the tenant and the key from in-process caches, and runs the same ingestion service
(metering.services.ingest) on a small thread pool: each pool thread keeps its own database
connection, so a worker commits several requests at once and PostgreSQL groups the WAL flushes.
Anything else (other paths, OAuth2 tokens, JWTs, no credential) goes to Django unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

import msgspec
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from accounts.api.principal import ApiPrincipal
from accounts.models.api_key import KEY_PREFIX
from accounts.selectors.api_key import apikey_get_active
from metering.ingest import MAX_BODY_BYTES
from metering.metrics import EVENTS_REJECTED
from metering.services.ingest import IngestOutcome, error, events_ingest, unavailable
from tenants.selectors import is_public, tenant_get_for_host

logger = logging.getLogger(__name__)
PATH = "/api/v1/events"


def _api_key_of(headers: dict[bytes, bytes]) -> str | None:
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token.startswith(KEY_PREFIX) else None


def ingest_with_api_key(*, host: str, raw_key: str, body: bytes, content_type: str) -> IngestOutcome:
    """Runs on a pool thread, with that thread's own database connection."""
    try:
        if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
            connection.close()  # a connection broken by an earlier outage: reconnect
        connection.set_schema_to_public()
        tenant = tenant_get_for_host(host=host)
        if tenant is None or is_public(tenant):
            return error(404, "not_found", "No tenant is served at this host.")
        connection.set_tenant(tenant)
        key = apikey_get_active(raw_key=raw_key)
        if key is None:
            return error(401, "invalid_api_key", "Unknown or revoked API key.")
        principal = ApiPrincipal(
            kind="api_key", label=f"api_key:{key.name}", scopes=frozenset(key.scopes), key_id=key.pk
        )
        return events_ingest(tenant=tenant, principal=principal, body=body, content_type=content_type)
    except (OperationalError, InterfaceError):
        logger.warning("database unavailable", exc_info=True)
        connection.close()
        return unavailable()


class IngestLane:
    def __init__(self, django_app):
        self.django_app = django_app
        self.executor = ThreadPoolExecutor(max_workers=settings.INGEST_THREADS, thread_name_prefix="ingest")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            return await self.django_app(scope, receive, send)
        headers = dict(scope["headers"])
        raw_key = _api_key_of(headers)
        if raw_key is None:
            return await self.django_app(scope, receive, send)
        length = headers.get(b"content-length", b"0")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            EVENTS_REJECTED.labels(code="payload_too_large").inc()
            return await self._send(send, error(413, "payload_too_large", f"The body exceeds {MAX_BODY_BYTES} bytes."))
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                EVENTS_REJECTED.labels(code="payload_too_large").inc()
                return await self._send(
                    send, error(413, "payload_too_large", f"The body exceeds {MAX_BODY_BYTES} bytes.")
                )
            if not message.get("more_body", False):
                break
        content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        outcome = await asyncio.get_running_loop().run_in_executor(
            self.executor,
            lambda: ingest_with_api_key(
                host=headers.get(b"host", b"").decode("latin-1"),
                raw_key=raw_key,
                body=bytes(body),
                content_type=content_type,
            ),
        )
        return await self._send(send, outcome)

    async def _send(self, send, outcome: IngestOutcome) -> None:
        payload = msgspec.json.encode(outcome.body)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", uuid.uuid4().hex.encode()),
        ]
        headers += [(name.lower().encode(), value.encode()) for name, value in outcome.headers.items()]
        await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
