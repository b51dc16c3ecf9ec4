"""Celery tasks of the portal: thin wrappers (the tenant travels in the task headers)."""

from celery import shared_task

from portal import report_exports


@shared_task(name=report_exports.REPORT_TASK, acks_late=True, time_limit=1800, soft_time_limit=1700)
def report_export_run(export_id: int) -> str:
    return report_exports.report_export_run(export_id=export_id)
