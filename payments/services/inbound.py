"""Inbound gateway webhooks: verified before anything is written, stored once per gateway event
id (a unique constraint: a redelivery inserts nothing and changes nothing), and applied in the
same transaction as the store, so an event is never recorded without its effect. The ledger's
rules make applying idempotent and order-proof (payments.services.ledger)."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from payments.gateways import gateway_get, gateway_settings_get
from payments.gateways.base import GatewayError, WebhookRejected
from payments.models import GatewayEventRecord, Payment, Refund
from payments.services.ledger import payment_result_record
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


def stripe_webhook_receive(*, body: bytes, headers: dict[str, str]) -> str:
    """Verify and apply one Stripe webhook; its outcome (`applied`, `stale`, `ignored`,
    `duplicate`). Raises WebhookRejected (nothing written) when it does not verify."""
    settings = gateway_settings_get()
    secret = settings.stripe_webhook_secret()
    if not secret:
        raise WebhookRejected("no webhook secret configured")
    try:
        gateway = gateway_get("stripe")
    except GatewayError as error:
        raise WebhookRejected(str(error)) from error
    event = gateway.webhook_parse(body=body, headers=headers, secret=secret)
    return _store_and_apply("stripe", event)


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
    logger.info("gateway webhook of a type we do not act on", extra={"event": event.id, "type": event.type})
    return GatewayEventRecord.Outcome.IGNORED
