"""Celery tasks of payments: thin wrappers (the tenant travels in the task headers)."""

from __future__ import annotations

from celery import shared_task

from payments.services.inbound import gateway_events_apply_all


@shared_task(name="payments.gateway_events_apply", acks_late=True, time_limit=300, soft_time_limit=280)
def gateway_events_apply_task() -> int:
    """Scheduled by the webhook requests (payments.services.inbound), and by beat every minute in
    every tenant for the events whose scheduling was lost."""
    return gateway_events_apply_all()
