"""The ASGI fast lane for Stripe webhooks (payments.lane) through the real ASGI application: the
lane's threads verify and store as the view does; other methods reach Django."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.db import connection
from django_tenants.utils import schema_context

from config.asgi import application
from payments.gateways import gateway_settings_forget
from payments.models import GatewayEventRecord, GatewaySettings
from payments.services.inbound import gateway_events_apply
from tests.payments.conftest import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, signed

pytestmark = pytest.mark.usefixtures("django_db_setup")


def call(host: str, *, body: bytes = b"", signature: str | None = None, method: str = "POST"):
    headers = [(b"host", host.encode()), (b"content-type", b"application/json")]
    if signature is not None:
        headers.append((b"stripe-signature", signature.encode()))

    async def run():
        communicator = HttpCommunicator(application, method, "/payments/stripe/webhook", body=body, headers=headers)
        return await communicator.get_response(timeout=10)

    response = async_to_sync(run)()
    return response["status"], json.loads(response["body"]) if response["body"] else None


def stored(django_db_blocker, schema: str) -> list[tuple[str, str]]:
    with django_db_blocker.unblock(), schema_context(schema):
        rows = list(GatewayEventRecord.objects.order_by("id").values_list("event_id", "outcome"))
    connection.set_schema_to_public()
    return rows


def connected_host(tenant, django_db_blocker) -> str:
    """Connect the committed tenant to Stripe (keys and webhook secret stored encrypted); its host."""
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        row = GatewaySettings(stripe_publishable_key=PUBLISHABLE_KEY)
        row.stripe_secret_key_set(SECRET_KEY)
        row.stripe_webhook_secret_set(WEBHOOK_SECRET)
        row.save()
    connection.set_schema_to_public()
    gateway_settings_forget()
    return tenant.get_primary_domain().domain


def test_lane_verifies_stores_once_refuses_and_delegates(committed_tenant, django_db_blocker, monkeypatch):
    from payments import lane

    served = []
    real = lane.stripe_webhook_in_lane
    monkeypatch.setattr(lane, "stripe_webhook_in_lane", lambda **kw: served.append(kw["host"]) or real(**kw))
    tenant, _ = committed_tenant
    host = connected_host(tenant, django_db_blocker)
    event = {
        "id": "evt_lane",
        "object": "event",
        "type": "customer.updated",
        "created": int(time.time()),
        "data": {"object": {"object": "customer", "id": "cus_x"}},
    }
    body, signature = signed(event)

    assert call(host, body=body, signature=signature) == (200, {"received": True, "outcome": "received"})
    assert call(host, body=body, signature=signature) == (200, {"received": True, "outcome": "duplicate"})
    forged = signed({**event, "id": "evt_forged"}, secret="whsec_other")
    assert call(host, body=forged[0], signature=forged[1]) == (
        400,
        {"error": {"code": "webhook_rejected", "message": "The webhook's signature does not verify."}},
    )
    assert call(host, body=body)[0] == 400  # no signature
    assert call("nobody.localhost", body=body, signature=signature) == (
        404,
        {"error": {"code": "not_found", "message": "No tenant is served at this host."}},
    )
    assert len(served) == 5  # every POST above went through the lane's threads
    assert call(host, method="GET")[0] == 405  # Django's view: POST only
    assert len(served) == 5
    assert stored(django_db_blocker, tenant.schema_name) == [("evt_lane", "received")]
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        assert gateway_events_apply() == 1
    connection.set_schema_to_public()
    assert stored(django_db_blocker, tenant.schema_name) == [("evt_lane", "ignored")]


def test_concurrent_webhooks_are_stored_together_and_each_answered(committed_tenant, django_db_blocker, monkeypatch):
    """Requests that arrive together share INSERTs (the group commit) and each gets its own
    answer: a redelivery in the same burst is `duplicate`, a forged one is refused."""
    from payments import lane

    batches = []
    real = lane.events_store_in_lane
    monkeypatch.setattr(lane, "events_store_in_lane", lambda batch: batches.append(len(batch)) or real(batch))
    tenant, _ = committed_tenant
    host = connected_host(tenant, django_db_blocker)
    now = int(time.time())
    bodies = [
        signed({"id": f"evt_c{n}", "object": "event", "type": "customer.updated", "created": now, "data": {}})
        for n in range(12)
    ]
    bodies += [bodies[0], bodies[5]]  # redelivered in the same burst
    bodies.append(signed({"id": "evt_cforged", "object": "event", "type": "x", "created": now}, secret="whsec_other"))
    headers = [(b"host", host.encode()), (b"content-type", b"application/json")]

    async def run():
        communicators = [
            HttpCommunicator(
                application,
                "POST",
                "/payments/stripe/webhook",
                body=body,
                headers=[*headers, (b"stripe-signature", signature.encode())],
            )
            for body, signature in bodies
        ]
        return await asyncio.gather(*(c.get_response(timeout=10) for c in communicators))

    responses = async_to_sync(run)()
    answers = [(r["status"], json.loads(r["body"]).get("outcome")) for r in responses]
    assert sorted(answers[:14]) == sorted([(200, "received")] * 12 + [(200, "duplicate")] * 2)
    assert (responses[14]["status"], json.loads(responses[14]["body"])["error"]["code"]) == (400, "webhook_rejected")
    assert sum(batches) == 14  # every verified event went through a batch, the forged one through none
    assert sorted(stored(django_db_blocker, tenant.schema_name)) == sorted((f"evt_c{n}", "received") for n in range(12))
