"""Payloads of the customer and subscription webhook events (v1; documented in docs/webhooks.md),
emitted by the services in the transaction of the change."""

from __future__ import annotations

from datetime import datetime

from billing.models import Organization, Subscription
from core.services.webhook_emit import webhook_emit


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def customer_payload(organization: Organization) -> dict:
    return {
        "id": organization.external_id,
        "name": organization.name,
        "status": organization.status,
        "currency": organization.currency,
        "timezone": organization.timezone,
        "billing_email": organization.billing_email,
        "country": organization.country,
        "tax_exempt": organization.tax_exempt,
        "metadata": organization.metadata,
        "created_at": _time(organization.created_at),
        "updated_at": _time(organization.updated_at),
    }


def customer_emit(event_type: str, organization: Organization) -> None:
    webhook_emit(event_type=event_type, payload=customer_payload(organization))


def subscription_payload(subscription: Subscription) -> dict:
    version = subscription.plan_version
    return {
        "id": subscription.pk,
        "customer": subscription.organization.external_id,
        "plan": version.plan.code,
        "plan_version": version.version,
        "status": subscription.status,
        "billing_mode": subscription.billing_mode,
        "started_at": _time(subscription.started_at),
        "current_period_start": _time(subscription.current_period_start),
        "current_period_end": _time(subscription.current_period_end),
        "trial_end": _time(subscription.trial_end),
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "canceled_at": _time(subscription.canceled_at),
        "ended_at": _time(subscription.ended_at),
    }


def subscription_emit(event_type: str, subscription: Subscription, **extra) -> None:
    """`extra` adds event-specific keys beside the subscription (e.g. the change of a plan)."""
    webhook_emit(event_type=event_type, payload={**subscription_payload(subscription), **extra})
