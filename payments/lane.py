"""The ASGI fast lane for the gateways' POST /payments/stripe/webhook (the pattern of
metering.api.lane).

Through Django, a webhook ran the whole middleware chain and, under ASGI, opened a new database
connection per request (each request's thread has its own, and persistent connections are off in
async mode): a new PostgreSQL backend per event was most of its cost (bench/payments.py). This
lane reads the request itself, resolves the tenant from the in-process host cache and runs the same
service (payments.services.inbound.stripe_webhook_receive: verify, one INSERT, schedule the apply)
on a small thread pool whose threads keep their connections. The answers are the view's
(payments.views): 200 `received`/`duplicate`, 400 `webhook_rejected`; other methods and paths go
to Django unchanged."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from payments.gateways.base import WebhookRejected
from payments.services.inbound import stripe_webhook_receive
from tenants.selectors import is_public, tenant_get_for_host

logger = logging.getLogger(__name__)
PATH = "/payments/stripe/webhook"
MAX_BODY_BYTES = 1_000_000  # Stripe's events are a few KB; its largest objects well under this


def _error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"error": {"code": code, "message": message}}


def stripe_webhook_in_lane(*, host: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    """Runs on a pool thread, with that thread's own database connection."""
    try:
        if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
            connection.close()  # a connection broken by an earlier outage: reconnect
        connection.set_schema_to_public()
        tenant = tenant_get_for_host(host=host)
        if tenant is None or is_public(tenant):
            return _error(404, "not_found", "No tenant is served at this host.")
        connection.set_tenant(tenant)
        try:
            outcome = stripe_webhook_receive(body=body, headers=headers)
        except WebhookRejected:
            return _error(400, "webhook_rejected", "The webhook's signature does not verify.")
        return 200, {"received": True, "outcome": outcome}
    except (OperationalError, InterfaceError):
        logger.warning("database unavailable", exc_info=True)
        connection.close()
        # Nothing was stored (the event's insert is one autocommitted statement): the gateway retries.
        return _error(503, "service_unavailable", "The database is unavailable; nothing was stored. Retry shortly.")


class WebhookLane:
    def __init__(self, app):
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=settings.INGEST_THREADS, thread_name_prefix="webhooks")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        length = headers.get("content-length", "0")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return await self._send(send, _error(413, "payload_too_large", f"The body exceeds {MAX_BODY_BYTES} bytes."))
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                return await self._send(
                    send, _error(413, "payload_too_large", f"The body exceeds {MAX_BODY_BYTES} bytes.")
                )
            if not message.get("more_body", False):
                break
        answer = await asyncio.get_running_loop().run_in_executor(
            self.executor,
            lambda: stripe_webhook_in_lane(host=headers.get("host", ""), body=bytes(body), headers=headers),
        )
        return await self._send(send, answer)

    async def _send(self, send, answer: tuple[int, dict]) -> None:
        status, body = answer
        payload = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", uuid.uuid4().hex.encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
