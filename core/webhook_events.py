"""The catalogue of outbound webhook events (v1). The payloads are built by the app that owns the
object (billing/webhooks.py, invoicing/webhooks.py, portal/alerts.py) and documented with examples in
docs/webhooks.md; core knows only the names, so endpoint filters can be checked."""

from __future__ import annotations

EVENT_VERSION = 1

EVENT_TYPES: tuple[str, ...] = (
    "customer.created",
    "customer.updated",
    "customer.closed",
    "subscription.created",
    "subscription.updated",
    "subscription.canceled",
    "subscription.resumed",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.voided",
    "credit_note.created",
    "payment.succeeded",
    "payment.failed",
    "payment.refunded",
    "dunning.past_due",
    "dunning.restricted",
    "dunning.suspended",
    "dunning.final_action",
    "dunning.recovered",
    "subscription.suspended",
    "subscription.reactivated",
    "usage.threshold_reached",
    "usage.limit_reached",
)
