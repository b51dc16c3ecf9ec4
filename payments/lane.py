"""The ASGI fast lane for the gateways' POST /payments/stripe/webhook (the pattern of
metering.api.lane).

Through Django, a webhook ran the whole middleware chain and, under ASGI, opened a new database
connection per request (each request's thread has its own, and persistent connections are off in
async mode): a new PostgreSQL backend per event was most of its cost (bench/payments.py). This
lane reads the request itself, resolves the tenant from the in-process host cache and runs the same
service as the view (payments.services.inbound: verify, store, schedule the apply) on a small
thread pool whose threads keep their connections.

Storing is a group commit: the events verified while the previous INSERT was running are stored
together by the next one (`gateway_events_store`: one multi-row INSERT per tenant, committed by
itself), and each request is answered after the statement that stored its event, so an accepted
event is durable and a redelivery answers `duplicate`. At a trickle every event is its own batch
(nothing waits for company); under load a commit, and the apply run's scheduling, serve dozens of
events. The answers are the view's (payments.views): 200 `received`/`duplicate`, 400
`webhook_rejected`; other methods and paths go to Django unchanged."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import weakref
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from payments.gateways.base import GatewayEvent, WebhookRejected
from payments.services.inbound import gateway_events_store, stripe_webhook_verify
from tenants.selectors import is_public, tenant_get_for_host

logger = logging.getLogger(__name__)
PATH = "/payments/stripe/webhook"
MAX_BODY_BYTES = 1_000_000  # Stripe's events are a few KB; its largest objects well under this
STORE_BATCH = 500  # events per INSERT at most


def _error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"error": {"code": code, "message": message}}


@dataclass(frozen=True)
class Verified:
    schema: str
    event: GatewayEvent


_UNAVAILABLE = (503, "service_unavailable", "The database is unavailable; nothing was stored. Retry shortly.")


def stripe_webhook_in_lane(*, host: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict] | Verified:
    """Runs on a pool thread, with that thread's own database connection: the tenant and the
    verified event, or the answer that refuses it (nothing written)."""
    try:
        if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
            connection.close()  # a connection broken by an earlier outage: reconnect
        connection.set_schema_to_public()
        tenant = tenant_get_for_host(host=host)
        if tenant is None or is_public(tenant):
            return _error(404, "not_found", "No tenant is served at this host.")
        connection.set_tenant(tenant)
        try:
            return Verified(tenant.schema_name, stripe_webhook_verify(body=body, headers=headers))
        except WebhookRejected:
            return _error(400, "webhook_rejected", "The webhook's signature does not verify.")
    except (OperationalError, InterfaceError):
        logger.warning("database unavailable", exc_info=True)
        connection.close()
        return _error(*_UNAVAILABLE)


def events_store_in_lane(batch: list[Verified]) -> list[tuple[int, dict]]:
    """Runs on a pool thread: the batch's events stored with one INSERT per tenant (each committed
    by itself); each one's answer, in order."""
    by_schema: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(batch):
        by_schema[item.schema].append(index)
    answers: list[tuple[int, dict]] = [_error(*_UNAVAILABLE)] * len(batch)
    try:
        if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
            connection.close()
        for schema, indexes in by_schema.items():
            connection.set_schema(schema)
            outcomes = gateway_events_store("stripe", [batch[i].event for i in indexes])
            for index, outcome in zip(indexes, outcomes, strict=True):
                answers[index] = (200, {"received": True, "outcome": outcome})
    except (OperationalError, InterfaceError):
        logger.warning("database unavailable", exc_info=True)
        connection.close()
        # Those not stored keep the 503: their INSERT was one statement, committed or not at all.
    finally:
        connection.set_schema_to_public()
    return answers


@dataclass
class _GroupCommit:
    """One event loop's events waiting to be stored, and the task storing them (at most one: what
    arrives while it runs is the next batch)."""

    pending: list[tuple[Verified, asyncio.Future]] = field(default_factory=list)
    task: asyncio.Task | None = None


class WebhookLane:
    def __init__(self, app):
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=settings.INGEST_THREADS, thread_name_prefix="webhooks")
        self._groups: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # by event loop

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
        verified = await asyncio.get_running_loop().run_in_executor(
            self.executor,
            lambda: stripe_webhook_in_lane(host=headers.get("host", ""), body=bytes(body), headers=headers),
        )
        if isinstance(verified, Verified):
            return await self._send(send, await self._store(verified))
        return await self._send(send, verified)

    async def _store(self, verified: Verified) -> tuple[int, dict]:
        loop = asyncio.get_running_loop()
        group = self._groups.setdefault(loop, _GroupCommit())
        answer = loop.create_future()
        group.pending.append((verified, answer))
        if group.task is None:
            group.task = loop.create_task(self._commit(group))
        return await answer

    async def _commit(self, group: _GroupCommit) -> None:
        loop = asyncio.get_running_loop()
        try:
            while group.pending:
                batch, group.pending = group.pending[:STORE_BATCH], group.pending[STORE_BATCH:]
                try:
                    answers = await loop.run_in_executor(self.executor, events_store_in_lane, [v for v, _ in batch])
                except Exception as error:  # noqa: BLE001 (raised in each request it concerns)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():  # its client went away meanwhile
                        future.set_result(answer)
        finally:
            group.task = None

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
