"""Delivering a webhook message to its endpoint (the outbox handler of `webhook.deliver`).

- Standard Webhooks: `webhook-id` is `msg_<outbox id>` (the same on every retry and replay, so the
  receiver can deduplicate), `webhook-timestamp` the attempt's time, `webhook-signature` one
  `v1,<HMAC-SHA256>` per valid secret (two during a rotation's overlap), signed with the
  `standardwebhooks` package.
- Svix's schedule: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after each failure;
  dead after the 8th attempt. A 2xx is success; anything else (3xx included: redirects are not
  followed) or a network error is a failure.
- An endpoint is disabled at once on HTTP 410 Gone, and when its failures have run for 5 days with
  no success in between; its remaining messages then go dead (replayable) without a request.
- Every attempt is logged (WebhookDelivery): status, latency, ≤ 1 KB of the answer, error.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from psycopg import sql
from standardwebhooks import Webhook

from core import crypto
from core.db import current_schema, raw_execute, tenant_table
from core.faults import fault_point
from core.models import OutboxMessage, WebhookDelivery, WebhookEndpoint
from core.services.outbox import OutboxGiveUp, OutboxRecord, OutboxSend, outbox_register
from core.services.webhook_emit import WEBHOOK_KIND
from core.services.webhook_http import CONNECTIONS_PER_TARGET, TargetRefused, webhook_post

logger = logging.getLogger(__name__)

# Svix: https://docs.svix.com/retries (the first attempt is immediate).
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
DISABLE_AFTER = timedelta(days=5)
# Messages per dispatch task, claimed together (one task per emitting transaction of up to 50),
# sent SEND_CONCURRENCY at a time after the first: a task holds one lease for all of them, which
# covers its sends one after another at the longest timeouts (1 + 7 rounds x 13 s), with room.
BATCH = 50
SEND_CONCURRENCY = CONNECTIONS_PER_TARGET
LEASE = timedelta(minutes=5)
# A worker reads an endpoint at most this often (a change or disabling reaches it within this).
ENDPOINT_CACHE_SECONDS = 2.0
_endpoints: dict[tuple[str, int], tuple[float, WebhookEndpoint | None]] = {}


class WebhookAttemptFailed(Exception):
    pass


def webhook_message_id(message_id: int) -> str:
    return f"msg_{message_id}"


def endpoint_secrets(endpoint: WebhookEndpoint, *, at: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its overlap.
    Decrypted once per endpoint read (kept on the instance the endpoint cache holds)."""
    decrypted = getattr(endpoint, "_decrypted_secrets", None)
    if decrypted is None:
        previous = endpoint.previous_secret_encrypted
        decrypted = (crypto.decrypt(endpoint.secret_encrypted), crypto.decrypt(previous) if previous else None)
        endpoint._decrypted_secrets = decrypted  # type: ignore[attr-defined]
    secrets = [decrypted[0]]
    if decrypted[1] and endpoint.previous_secret_expires_at is not None and at < endpoint.previous_secret_expires_at:
        secrets.append(decrypted[1])
    return secrets


def webhook_sign(*, secrets: list[str], msg_id: str, at: datetime, body: str) -> str:
    return " ".join(Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body) for secret in secrets)


def _endpoint(endpoint_id: int) -> WebhookEndpoint | None:
    key, now = (current_schema(), endpoint_id), time.monotonic()
    cached = _endpoints.get(key)
    if cached is not None and now - cached[0] < ENDPOINT_CACHE_SECONDS:
        return cached[1]
    if len(_endpoints) > 10_000:
        _endpoints.clear()
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    _endpoints[key] = (now, endpoint)
    return endpoint


def _forget(endpoint: WebhookEndpoint) -> None:
    _endpoints.pop((current_schema(), endpoint.pk), None)


def webhook_deliver(message: OutboxMessage) -> OutboxSend:
    """Read the message's endpoint; the send of its event to it (this attempt), which a worker
    makes inline or on a sender thread, and then records: a success's attempt log row is written
    with the done mark (one commit); a failure raises to have the message retried."""
    endpoint = _endpoint(message.payload["endpoint_id"])
    if endpoint is None:
        raise OutboxGiveUp("the endpoint was deleted")
    if not endpoint.enabled:
        raise OutboxGiveUp(f"the endpoint is disabled: {endpoint.disabled_reason or 'by hand'}")
    endpoint_secrets(endpoint, at=timezone.now())  # decrypted here, once per endpoint read
    return OutboxSend(send=lambda: _send(message, endpoint), then=lambda sent: _record(message, endpoint, sent))


@dataclass(frozen=True)
class _Sent:
    at: datetime
    status_code: int | None
    latency_ms: int
    excerpt: str
    error: str
    succeeded: bool


def _send(message: OutboxMessage, endpoint: WebhookEndpoint) -> _Sent:
    """Sign and POST (no database: it may run on a sender thread). Signed when sent, so the
    timestamp is the attempt's however long the message waited for a sender."""
    event = message.payload["event"]
    body = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    now = timezone.now().replace(microsecond=0)
    msg_id = webhook_message_id(message.pk)
    headers = {
        "content-type": "application/json",
        "user-agent": "billing-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook_sign(secrets=endpoint_secrets(endpoint, at=now), msg_id=msg_id, at=now, body=body),
    }
    fault_point("webhook.before_send")
    try:
        result = webhook_post(endpoint.url, body=body.encode(), headers=headers)
        sent = _Sent(now, result.status_code, result.latency_ms, result.excerpt, result.error, result.succeeded)
    except TargetRefused as exc:
        sent = _Sent(now, None, 0, "", f"refused: {exc}"[:500], False)
    fault_point("webhook.after_send")  # the worst moment to die: sent, nothing recorded (tests)
    return sent


def _record(message: OutboxMessage, endpoint: WebhookEndpoint, sent: _Sent) -> OutboxRecord:
    """After the send, on the task's thread: the attempt log, the endpoint's run of failures."""
    now, status_code = sent.at, sent.status_code
    event_type = message.payload["event"]["type"]
    log = _log_row(
        message, endpoint, event_type, status_code, sent.latency_ms, sent.excerpt, sent.error, sent.succeeded, now
    )
    if sent.succeeded:
        if endpoint.failing_since is not None:  # a success ends the run of failures
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(failing_since=None)
            _forget(endpoint)
        return log  # written with the done mark
    raw_execute(log.statement, log.params)
    what = f"HTTP {status_code}" if status_code is not None else sent.error
    _forget(endpoint)  # its failure state changes below: the next message reads it afresh
    if status_code == 410:
        _disable(endpoint, reason="The endpoint answered 410 Gone.", at=now)
        raise OutboxGiveUp(f"{what}: endpoint disabled")
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    failing_since = WebhookEndpoint.objects.values_list("failing_since", flat=True).get(pk=endpoint.pk)
    if failing_since is not None and now - failing_since >= DISABLE_AFTER:
        _disable(endpoint, reason=f"Every attempt failed for {DISABLE_AFTER.days} days (last: {what}).", at=now)
        raise OutboxGiveUp(f"{what}: endpoint disabled after {DISABLE_AFTER.days} days of failures")
    raise WebhookAttemptFailed(what)


_LOG_SQL = """
INSERT INTO {table} (message_id, endpoint_id, event_type, attempt, status_code, latency_ms, response_excerpt, error,
                     succeeded, attempted_at)
VALUES (%(log_message)s, %(log_endpoint)s, %(log_event_type)s, %(log_attempt)s, %(log_status_code)s,
        %(log_latency_ms)s, %(log_excerpt)s, %(log_error)s, %(log_succeeded)s, %(log_at)s)
"""


def _log_row(
    message: OutboxMessage,
    endpoint: WebhookEndpoint,
    event_type: str,
    status_code: int | None,
    latency: int | None,
    excerpt: str,
    error: str,
    succeeded: bool,
    at: datetime,
) -> OutboxRecord:
    """The attempt log row (WebhookDelivery), one statement (core.db: no search-path round trip)."""
    return OutboxRecord(
        statement=sql.SQL(_LOG_SQL).format(table=tenant_table(WebhookDelivery._meta.db_table)),
        params={
            "log_message": message.pk,
            "log_endpoint": endpoint.pk,
            "log_event_type": event_type,
            "log_attempt": message.attempts,
            "log_status_code": status_code,
            "log_latency_ms": latency,
            "log_excerpt": excerpt,
            "log_error": error,
            "log_succeeded": succeeded,
            "log_at": at,
        },
    )


def _disable(endpoint: WebhookEndpoint, *, reason: str, at: datetime) -> None:
    updated = WebhookEndpoint.objects.filter(Q(pk=endpoint.pk) & Q(enabled=True)).update(
        enabled=False, disabled_reason=reason[:300], disabled_at=at, updated_at=at
    )
    if updated:
        logger.warning("webhook endpoint disabled", extra={"endpoint": endpoint.pk, "reason": reason})


def webhook_handler_register() -> None:
    outbox_register(
        WEBHOOK_KIND,
        handler=webhook_deliver,
        retry_delays=RETRY_DELAYS,
        lease=LEASE,
        batch=BATCH,
        claim_together=True,
        concurrency=SEND_CONCURRENCY,
    )
