"""Celery tasks of invoicing: thin, idempotent wrappers (the tenant travels in the task headers)."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from invoicing.services.billing_run import billing_run as billing_run_service
from invoicing.services.deliver import invoice_deliver as invoice_deliver_service


@shared_task(name="invoicing.billing_run", acks_late=True, time_limit=3600, soft_time_limit=3500)
def billing_run(at: str | None = None) -> dict:
    """Beat runs this hourly in every tenant. A crash or a second concurrent run is safe: chunks
    are transactions and locked subscriptions are skipped (invoicing.services.billing_run)."""
    result = billing_run_service(at=datetime.fromisoformat(at) if at else None)
    return {
        "invoices_created": result.invoices_created,
        "finalized": result.finalized,
        "held": result.held,
        "problems": result.problems,
    }


@shared_task(
    name="invoicing.invoice_deliver",
    acks_late=True,
    time_limit=900,
    soft_time_limit=870,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def invoice_deliver(invoice_ids: list[int]) -> None:
    """Render and store each PDF once, then email it. Every step is skipped once done, so a retry
    of the batch redoes only what did not happen. Finalization no longer enqueues this (it writes
    `invoice.deliver` outbox messages); kept for tasks queued before that change was deployed."""
    for invoice_id in invoice_ids:
        invoice_deliver_service(invoice_id=invoice_id)
