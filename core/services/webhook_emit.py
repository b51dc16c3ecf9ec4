"""Emitting webhook events: one outbox message per (event, matching enabled endpoint), written in
the transaction of the change (so an event exists exactly when its change does)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from core.models import WebhookEndpoint
from core.services.outbox import OutboxItem, outbox_add_bulk
from core.webhook_events import EVENT_TYPES, EVENT_VERSION

WEBHOOK_KIND = "webhook.deliver"


def webhook_emit(*, event_type: str, payload: dict[str, Any]) -> list[int]:
    """Emit one event (`payload` is its `data`); the outbox ids written (none without endpoints)."""
    return webhook_emit_bulk([(event_type, payload)])


def webhook_emit_bulk(events: Sequence[tuple[str, dict[str, Any]]]) -> list[int]:
    """Emit many events with one endpoint query and one INSERT (a billing run drafts and finalizes
    500 invoices a chunk). Must run inside the transaction of the change."""
    if not events:
        return []
    unknown = {event_type for event_type, _ in events} - set(EVENT_TYPES)
    if unknown:
        raise ValueError(f"unknown webhook event types: {sorted(unknown)}")
    endpoints = list(WebhookEndpoint.objects.filter(enabled=True).only("id", "event_types"))
    if not endpoints:
        return []
    created = timezone.now().isoformat()
    items: list[OutboxItem] = []
    for event_type, data in events:
        event = {
            "id": f"evt_{uuid.uuid4().hex}",  # the same for every endpoint; webhook-id is per delivery
            "type": event_type,
            "version": EVENT_VERSION,
            "timestamp": created,
            "data": data,
        }
        items.extend(
            OutboxItem(kind=WEBHOOK_KIND, payload={"endpoint_id": endpoint.pk, "event": event})
            for endpoint in endpoints
            if endpoint.accepts(event_type)
        )
    return outbox_add_bulk(items)
