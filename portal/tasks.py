"""Celery tasks of the portal: thin wrappers (the tenant travels in the task headers)."""

from celery import shared_task

from portal import report_exports
from portal.alerts import EVALUATE_TASK, alerts_evaluate, alerts_evaluate_started


@shared_task(name=report_exports.REPORT_TASK, acks_late=True, time_limit=1800, soft_time_limit=1700)
def report_export_run(export_id: int) -> str:
    return report_exports.report_export_run(export_id=export_id)


@shared_task(name=EVALUATE_TASK, acks_late=True, time_limit=120, soft_time_limit=100)
def alerts_evaluate_task(organization_id: int) -> int:
    """Evaluate one organization's alerts (queued from the drain path, coalesced per organization)."""
    alerts_evaluate_started(organization_id)
    return len(alerts_evaluate(organization_id=organization_id))
