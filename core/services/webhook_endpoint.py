"""Writes to webhook endpoints: create (the secret returned once), change, enable/disable, rotate
the secret with an overlap, delete, and replay a delivery. Changes are audited by django-auditlog
(the encrypted secrets are excluded from its diffs)."""

from __future__ import annotations

import base64
import secrets as random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import crypto
from core.models import WebhookDelivery, WebhookEndpoint
from core.services.outbox import outbox_redeliver
from core.services.webhook_http import target_check
from core.webhook_events import EVENT_TYPES

SECRET_BYTES = 32  # Standard Webhooks: 24 to 64 bytes


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str  # shown once; only its encryption is stored


def webhook_secret_new() -> str:
    return "whsec_" + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def _event_types_checked(event_types: Sequence[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event types: {unknown}")
    return sorted(set(event_types))


def webhook_endpoint_create(*, url: str, description: str = "", event_types: Sequence[str] = ()) -> EndpointWithSecret:
    """Raises TargetRefused when the URL may not be called (SSRF rules), ValueError for unknown
    event types."""
    target_check(url)
    secret = webhook_secret_new()
    endpoint = WebhookEndpoint(
        url=url,
        description=description,
        event_types=_event_types_checked(event_types),
        secret_encrypted=crypto.encrypt(secret),
    )
    endpoint.full_clean()
    with transaction.atomic():
        endpoint.save()
    return EndpointWithSecret(endpoint, secret)


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    description: str | None = None,
    event_types: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Enabling clears the disabled reason and the failure run (a fresh 5 days)."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if url is not None and url != locked.url:
            target_check(url)
            locked.url = url
        if description is not None:
            locked.description = description
        if event_types is not None:
            locked.event_types = _event_types_checked(event_types)
        if enabled is not None and enabled != locked.enabled:
            locked.enabled = enabled
            locked.failing_since = None
            if enabled:
                locked.disabled_reason, locked.disabled_at = "", None
            else:
                locked.disabled_reason, locked.disabled_at = "Disabled by hand.", timezone.now()
        locked.full_clean()
        locked.save()
    return locked


def webhook_endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, overlap: timedelta | None = None
) -> EndpointWithSecret:
    """A new secret signs from now on; the current one keeps signing too until `overlap` has
    passed (default WEBHOOK_SECRET_OVERLAP_HOURS), so a receiver can switch without a refusal."""
    overlap = overlap if overlap is not None else timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
    secret = webhook_secret_new()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret_encrypted = locked.secret_encrypted
        locked.previous_secret_expires_at = timezone.now() + overlap
        locked.secret_encrypted = crypto.encrypt(secret)
        locked.save()
    return EndpointWithSecret(locked, secret)


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Its delivery log goes with it; its waiting messages go dead without a request."""
    with transaction.atomic():
        endpoint.delete()


def webhook_delivery_replay(*, delivery: WebhookDelivery) -> bool:
    """Send the delivery's message again (same `webhook-id`), with a fresh schedule. False when the
    message is still waiting or in flight (it will be sent anyway) or no longer kept."""
    return outbox_redeliver(message_id=delivery.message_id)


def webhook_secrets_reencrypt() -> int:
    """Re-encrypt every stored secret under the first FIELD_ENCRYPTION_KEYS key (after a key
    rotation); the number of endpoints rewritten."""
    count = 0
    with transaction.atomic():
        for endpoint in WebhookEndpoint.objects.select_for_update():
            endpoint.secret_encrypted = crypto.reencrypt(endpoint.secret_encrypted)
            if endpoint.previous_secret_encrypted:
                endpoint.previous_secret_encrypted = crypto.reencrypt(endpoint.previous_secret_encrypted)
            endpoint.save(update_fields=["secret_encrypted", "previous_secret_encrypted"])
            count += 1
    return count
