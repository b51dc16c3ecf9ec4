"""Large usage reports, built in the background (issue 13 flow 8): the request stores what was
asked and enqueues the task on commit; the task claims the export, builds the report with
progress, and stores its CSV and XLSX under the tenant's media. Downloads go through the
portal's view, which finds the export by the organization it resolved from the user's own
memberships (another organization's export is a 404)."""

from __future__ import annotations

import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from billing.models import Organization
from portal.models import ReportExport
from portal.report_files import report_csv, report_xlsx
from portal.reports import ReportSpec, report_build, report_cells

logger = logging.getLogger(__name__)
REPORT_TASK = "portal.report_export_run"
PROGRESS_EVERY = 25  # statements between progress writes: the page polls once a second


def report_export_request(*, actor, organization: Organization, spec: ReportSpec) -> ReportExport:
    """Store the export and enqueue its task once the row is committed."""
    from zoneinfo import ZoneInfo

    from portal.tasks import report_export_run

    with transaction.atomic():
        export = ReportExport.objects.create(
            organization=organization,
            requested_by=actor,
            spec=spec.as_json(),
            total=report_cells(spec=spec, zone=ZoneInfo(organization.timezone)),
        )
        transaction.on_commit(lambda: report_export_run.delay(export.pk))
    return export


def report_export_run(*, export_id: int) -> str:
    """Build one export. Idempotent: only a pending (or, after a lost worker, running) export is
    claimed; a finished one is left as it is. A failure is recorded on the export, not retried
    (the report reads committed usage; asking again is the customer's button)."""
    claimed = ReportExport.objects.filter(
        pk=export_id, status__in=[ReportExport.Status.PENDING, ReportExport.Status.RUNNING]
    ).update(status=ReportExport.Status.RUNNING, done=0)
    if not claimed:
        return "skipped"
    export = ReportExport.objects.select_related("organization").get(pk=export_id)

    def progress(done: int, total: int) -> None:
        if done % PROGRESS_EVERY == 0 or done == total:
            ReportExport.objects.filter(pk=export_id).update(done=done, total=total)

    try:
        report = report_build(
            organization=export.organization, spec=ReportSpec.from_json(export.spec), progress=progress
        )
        export.refresh_from_db(fields=["done", "total"])
        export.csv.save("usage.csv", ContentFile(report_csv(report)), save=False)
        export.xlsx.save("usage.xlsx", ContentFile(report_xlsx(report)), save=False)
    except Exception as exc:  # recorded for the page; the log has the traceback
        logger.exception("report export failed", extra={"export": export_id})
        ReportExport.objects.filter(pk=export_id).update(
            status=ReportExport.Status.FAILED, error=str(exc)[:300], finished_at=timezone.now()
        )
        return "failed"
    export.rows = len(report.rows)
    export.status = ReportExport.Status.DONE
    export.finished_at = timezone.now()
    export.save(update_fields=["csv", "xlsx", "rows", "status", "finished_at", "done", "total"])
    return "done"
