"""Large usage reports, built in the background (issue 13 flow 8): the request stores what was
asked and enqueues the task on commit; the task claims the export, builds the report with
progress, and stores its CSV and XLSX under the tenant's media. Downloads go through the
portal's view, which finds the export by the organization it resolved from the user's own
memberships (another organization's export is a 404)."""

from __future__ import annotations

from django.db import transaction

from billing.models import Organization
from core.background_exports import file_export_run
from portal.models import ReportExport
from portal.report_files import report_csv, report_xlsx
from portal.reports import ReportSpec, report_build, report_cells

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
    """Build one export (core.background_exports: claimed once, progress, failure recorded)."""

    def build(export, progress):
        spec = ReportSpec.from_json(export.spec)
        report = report_build(organization=export.organization, spec=spec, progress=progress)
        return len(report.rows), {"csv": ("usage.csv", report_csv(report)), "xlsx": ("usage.xlsx", report_xlsx(report))}

    return file_export_run(
        model=ReportExport, export_id=export_id, build=build, progress_every=PROGRESS_EVERY, related=["organization"]
    )
