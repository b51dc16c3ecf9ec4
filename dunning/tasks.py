"""Celery tasks of dunning: thin wrappers (the tenant travels in the task headers)."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from dunning.services.run import dunning_run as dunning_run_service


@shared_task(name="dunning.run", acks_late=True, time_limit=3600, soft_time_limit=3500)
def dunning_run(at: str | None = None) -> dict:
    """Beat runs this hourly in every tenant. Safe to run twice or concurrently: every step is a
    unique row written with its effect (dunning.services.run)."""
    result = dunning_run_service(at=datetime.fromisoformat(at) if at else None)
    return {
        "cases_opened": result.cases_opened,
        "cases_closed": result.cases_closed,
        "retries": result.retries,
        "emails": result.emails,
        "stages": result.stages,
        "transitions": len(result.transitions),
    }
