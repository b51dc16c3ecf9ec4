"""Celery tasks of the outbox: thin wrappers (the tenant travels in the task headers)."""

from __future__ import annotations

from celery import shared_task

from core.services.outbox import outbox_process, outbox_sweep


@shared_task(name="core.outbox_dispatch", acks_late=True, time_limit=900, soft_time_limit=870)
def outbox_dispatch(ids: list[int]) -> dict[str, int]:
    """Claim and run the given messages. Safe to receive twice or late: a claim is a conditional
    update, so a message already done or being worked on elsewhere is skipped."""
    result = outbox_process(ids=ids)
    return {"done": result.done, "failed": result.failed, "dead": result.dead, "skipped": result.skipped}


@shared_task(name="core.outbox_sweep", acks_late=True, time_limit=300, soft_time_limit=280)
def outbox_sweep_task() -> dict[str, int]:
    """Beat runs this every minute in every tenant (TenantAwareScheduler)."""
    result = outbox_sweep()
    return {"enqueued": result.enqueued, "pruned": result.pruned}
