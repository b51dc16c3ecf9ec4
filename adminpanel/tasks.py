"""Celery tasks of the staff portal: thin wrappers (the tenant travels in the task headers)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from adminpanel.analytics import revenue_data_load, revenue_snapshot_take


@shared_task(name="adminpanel.analytics_snapshot", acks_late=True, time_limit=1800, soft_time_limit=1700)
def analytics_snapshot() -> dict:
    """Beat runs this hourly in every tenant: today's snapshot so far, and yesterday's again so
    that it ends with the whole day (payments and invoices of its last hour). Rewrites are
    idempotent (revenue_snapshot_take)."""
    today = timezone.now().date()
    data = revenue_data_load()
    rows = sum(revenue_snapshot_take(day=day, data=data) for day in (today - timedelta(days=1), today))
    return {"rows": rows}


@shared_task(name="adminpanel.compliance_run", acks_late=True, time_limit=1800, soft_time_limit=1700)
def compliance_run_task() -> dict:
    """Beat runs the compliance checks daily in every tenant (the dashboard's "last passed")."""
    from adminpanel.compliance import compliance_run

    return {row.key: row.passed for row in compliance_run()}


@shared_task(name="adminpanel.accounting_export_run", acks_late=True, time_limit=1800, soft_time_limit=1700)
def accounting_export_run_task(export_id: int) -> str:
    """Build one accounting export (adminpanel.exports; queued by the staff exports page)."""
    from adminpanel.exports import accounting_export_run

    return accounting_export_run(export_id=export_id)
