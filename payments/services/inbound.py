"""Inbound gateway webhooks: verified before anything is written, stored once per gateway event
id (a unique constraint: a redelivery inserts nothing and changes nothing), and applied.

Stripe's are stored `received` by the request (one INSERT: the answer is a quick 2xx, as Stripe
asks) and applied in batches by a worker (`gateway_events_apply`: the oldest received ones, rows
locked, their payments' results recorded with one `payment_results_record`, outcomes written
together). The request schedules that worker on commit, at most one pending run per tenant (a
cache key set with `add`, cleared by the run before it reads: an event stored after the run read
finds the key cleared and schedules the next one); beat runs it every minute too, for an event
whose scheduling was lost (the broker down, a worker killed: its transaction rolls back and the
events stay `received`). PayPal's are applied in the request, in the store's transaction (their
volume is low). The ledger's rules make applying idempotent and order-proof
(payments.services.ledger): a batch applies its events in the order the gateway sent them."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence

from celery import current_app
from django.core.cache import cache
from django.db import IntegrityError, transaction
from psycopg import sql

from core import crypto
from core.db import current_schema, raw_execute, rows_update, tenant_table
from payments.gateways import gateway_get, gateway_settings_cached
from payments.gateways.base import GatewayError, GatewayEvent, WebhookRejected
from payments.gateways.stripe import stripe_event, stripe_webhook_parse
from payments.models import GatewayEventRecord, Payment, Refund
from payments.services.ledger import payment_result_record, payment_results_record
from payments.services.methods import payment_method_updated
from payments.services.refunds import refund_result_record

logger = logging.getLogger(__name__)

CHARGE_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "payment_intent.requires_action",
        "payment_intent.canceled",
    }
)
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"})
METHOD_EVENTS = frozenset({"payment_method.updated", "payment_method.automatically_updated"})
APPLY_TASK = "payments.gateway_events_apply"
APPLY_BATCH = 500  # events per transaction of a run
APPLY_DELAY = 0.2  # seconds a scheduled run waits, gathering the events that arrive meanwhile
# How long a scheduled run keeps others from being scheduled: past it (its task lost), the next
# event schedules again.
APPLY_PENDING_TTL = 60


def stripe_webhook_receive(*, body: bytes, headers: dict[str, str]) -> str:
    """Verify and store one Stripe webhook; its outcome (`received`, `duplicate`). Raises
    WebhookRejected (nothing written) when it does not verify."""
    return gateway_events_store("stripe", [stripe_webhook_verify(body=body, headers=headers)])[0]


def stripe_webhook_verify(*, body: bytes, headers: dict[str, str]) -> GatewayEvent:
    """The event of one Stripe webhook, verified against the tenant's signing secret (the SDK's
    check: payments.gateways.stripe). Raises WebhookRejected when it does not verify or the tenant
    has not connected Stripe. Reads nothing from the database while the settings row is cached."""
    settings = gateway_settings_cached()
    if not settings.stripe_webhook_secret_encrypted:
        raise WebhookRejected("no webhook secret configured")
    if not settings.stripe_ready:
        raise WebhookRejected("Stripe is not connected for this tenant.")
    return stripe_webhook_parse(body=body, headers=headers, secret=_decrypted(settings.stripe_webhook_secret_encrypted))


@functools.lru_cache(maxsize=256)
def _decrypted(token: str) -> str:
    """A stored secret in clear, decrypted once per process (a Fernet decryption per webhook was a
    tenth of its CPU). Keyed by the stored token: a replaced or re-encrypted secret is a new entry."""
    return crypto.decrypt(token)


def gateway_events_store(gateway: str, events: Sequence[GatewayEvent]) -> list[str]:
    """Store verified events `received` with one INSERT, in the given order (a redelivered id, or
    one given twice, inserts nothing), and have a worker apply them soon (one scheduling for the
    lot). Per event, `received`, or `duplicate` when its id was stored already or given earlier
    in `events`. In the caller's transaction, or committed by the statement itself (autocommit:
    the webhook lane answers each request only after this returns)."""
    firsts: dict[str, int] = {}
    for index, event in enumerate(events):
        firsts.setdefault(event.id, index)
    if not firsts:
        return []
    documents = [
        {
            "id": events[index].id,
            "type": events[index].type[:100],
            "created": events[index].created.isoformat(),
            "payload": events[index].payload,
        }
        for index in firsts.values()
    ]
    rows = raw_execute(
        sql.SQL(
            "INSERT INTO {table} (gateway, event_id, type, created, payload, outcome, received_at)"
            " SELECT %(gateway)s, e.doc->>'id', e.doc->>'type', (e.doc->>'created')::timestamptz,"
            " e.doc->'payload', %(outcome)s, now()"
            " FROM jsonb_array_elements(%(events)s::jsonb) WITH ORDINALITY AS e(doc, n) ORDER BY e.n"
            " ON CONFLICT (gateway, event_id) DO NOTHING RETURNING event_id"
        ).format(table=tenant_table(GatewayEventRecord._meta.db_table)),
        {"gateway": gateway, "events": json.dumps(documents), "outcome": GatewayEventRecord.Outcome.RECEIVED},
    )
    stored = {row[0] for row in rows}
    if stored:
        schema = current_schema()
        transaction.on_commit(lambda: gateway_events_schedule(schema=schema))
    return [
        GatewayEventRecord.Outcome.RECEIVED if firsts[event.id] == index and event.id in stored else "duplicate"
        for index, event in enumerate(events)
    ]


def _pending_key(schema: str) -> str:
    return f"payments:gateway-events-apply:{schema}"


def gateway_events_schedule(*, schema: str) -> bool:
    """Enqueue a run of `gateway_events_apply` in `schema` unless one is pending. Never raises: the
    events are committed, and beat's run finds whatever this could not schedule."""
    try:
        if not cache.add(_pending_key(schema), 1, timeout=APPLY_PENDING_TTL):
            return False  # a run is pending: it has not read yet, so it will see this event
        current_app.send_task(APPLY_TASK, headers={"_schema_name": schema}, countdown=APPLY_DELAY, retry=False)
    except Exception:
        logger.warning("payments: could not schedule applying gateway events", extra={"schema": schema}, exc_info=True)
        return False
    return True


def gateway_events_apply_all() -> int:
    """The task's body: clear the pending mark first (an event stored from now on schedules a next
    run), then apply batches until none is left; the events applied."""
    try:
        cache.delete(_pending_key(current_schema()))
    except Exception:  # no cache: the run goes on, beat's next run covers the rest
        logger.warning("payments: could not clear the pending mark of gateway events", exc_info=True)
    applied = 0
    while True:
        done = gateway_events_apply()
        applied += done
        if done < APPLY_BATCH:
            return applied


def gateway_events_apply(*, limit: int = APPLY_BATCH) -> int:
    """Apply up to `limit` received events, oldest first, in one transaction (rows locked, skipping
    those another run holds); how many. The charge events' results are recorded together
    (payments.services.ledger.payment_results_record, in the order received); others one by one."""
    with transaction.atomic():
        records = list(
            GatewayEventRecord.objects.select_for_update(skip_locked=True)
            .filter(gateway="stripe", outcome=GatewayEventRecord.Outcome.RECEIVED)
            .order_by("id")[:limit]
        )
        if not records:
            return 0
        events = [(record, stripe_event(record.payload)) for record in records]
        charges = [(r, e) for r, e in events if e.charge is not None and e.type in CHARGE_EVENTS]
        known = dict(
            Payment.objects.filter(
                gateway="stripe", gateway_payment_id__in={e.charge.id for _, e in charges}
            ).values_list("gateway_payment_id", "pk")
        )
        recorded = [(r, e) for r, e in charges if e.charge.id in known]
        changed = payment_results_record([(known[e.charge.id], e.charge, e.created) for _, e in recorded])
        for (record, _), was_changed in zip(recorded, changed, strict=True):
            record.outcome = GatewayEventRecord.Outcome.APPLIED if was_changed else GatewayEventRecord.Outcome.STALE
        for record, event in events:
            if record.outcome == GatewayEventRecord.Outcome.RECEIVED:
                record.outcome = _apply("stripe", event)  # unknown payments, refunds, other types
        rows_update(GatewayEventRecord, records, ["outcome"])
    return len(records)


def paypal_webhook_receive(*, body: bytes, headers: dict[str, str]) -> str:
    """Verify (PayPal's certificate, the tenant's webhook id: payments.paypal) and apply one PayPal
    webhook through the same store and ledger code as Stripe's. Raises WebhookRejected (nothing
    written); its `retryable` is true when PayPal's certificate could not be fetched."""
    try:
        gateway = gateway_get("paypal")
    except GatewayError as error:
        raise WebhookRejected(str(error)) from error
    return _store_and_apply("paypal", gateway.webhook_parse(body=body, headers=headers))


def _store_and_apply(gateway: str, event) -> str:
    try:
        with transaction.atomic():
            record = GatewayEventRecord.objects.create(
                gateway=gateway,
                event_id=event.id,
                type=event.type,
                created=event.created,
                payload=event.payload,
                outcome=GatewayEventRecord.Outcome.IGNORED,
            )
            outcome = _apply(gateway, event)
            if outcome != record.outcome:
                GatewayEventRecord.objects.filter(pk=record.pk).update(outcome=outcome)
    except IntegrityError:
        return "duplicate"
    return outcome


def _apply(gateway: str, event) -> str:
    # Stripe's charge events are the listed types; the PayPal adapter sets `charge` only for the
    # capture events it normalizes.
    if event.charge is not None and (gateway != "stripe" or event.type in CHARGE_EVENTS):
        payment_id = (
            Payment.objects.filter(gateway=gateway, gateway_payment_id=event.charge.id)
            .values_list("pk", flat=True)
            .first()
        )
        if payment_id is None:
            logger.info("gateway webhook about an unknown payment", extra={"event": event.id, "type": event.type})
            return GatewayEventRecord.Outcome.IGNORED
        changed = payment_result_record(payment_id=payment_id, result=event.charge, gateway_at=event.created)
        return GatewayEventRecord.Outcome.APPLIED if changed else GatewayEventRecord.Outcome.STALE
    if event.refund is not None and (gateway != "stripe" or event.type in REFUND_EVENTS):
        refund_id = Refund.objects.filter(gateway_refund_id=event.refund.id).values_list("pk", flat=True).first()
        if refund_id is None or event.refund.status not in ("succeeded", "failed"):
            return GatewayEventRecord.Outcome.IGNORED if refund_id is None else GatewayEventRecord.Outcome.STALE
        before = Refund.objects.values_list("status", flat=True).get(pk=refund_id)
        after = refund_result_record(refund_id=refund_id, status=event.refund.status, message=event.type).status
        return GatewayEventRecord.Outcome.APPLIED if after != before else GatewayEventRecord.Outcome.STALE
    if event.method is not None and event.type in METHOD_EVENTS:
        if payment_method_updated(method=event.method):
            return GatewayEventRecord.Outcome.APPLIED
        return GatewayEventRecord.Outcome.STALE
    logger.info("gateway webhook of a type we do not act on", extra={"event": event.id, "type": event.type})
    return GatewayEventRecord.Outcome.IGNORED
