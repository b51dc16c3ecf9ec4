"""The portal's reports page (issue 13 flow 8): a usage report as a table and a chart, its CSV
and XLSX, a monthly statement PDF, and large reports built in the background. Every member of
the organization may look and download (reports only read); the organization is resolved from
the signed-in user's own memberships first, so another organization's export is a 404."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone as dj_timezone
from django.views.decorators.http import require_GET, require_POST

from portal import selectors
from portal.models import ReportExport
from portal.report_exports import report_export_request
from portal.report_files import report_csv, report_xlsx, statement_get, statement_pdf
from portal.reports import MAX_DAYS, SYNC_MAX_CELLS, report_build, report_cells, report_form

FILES = {
    "csv": ("text/csv; charset=utf-8", report_csv),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", report_xlsx),
}
EXPORTS_SHOWN = 10


def _context(request, external_id: str) -> dict:
    organization, organizations = selectors.portal_organization_get(user=request.user, external_id=external_id)
    return {"organization": organization, "organizations": organizations, "section": "reports"}


def _today(organization) -> date:
    return dj_timezone.now().astimezone(ZoneInfo(organization.timezone)).date()


def _page(request, context: dict, form, *, status: int = 200, **extra):
    organization = context["organization"]
    today = _today(organization)
    context.update(
        form=form,
        max_days=MAX_DAYS,
        sync_max=SYNC_MAX_CELLS,
        exports=list(ReportExport.objects.filter(organization=organization).order_by("-created_at")[:EXPORTS_SHOWN]),
        this_month=today.strftime("%Y-%m"),
        **extra,
    )
    return render(request, "portal/reports.html", context, status=status)


@login_required
@require_GET
def reports(request, external_id: str):
    """The form; with a query, the report (or, past SYNC_MAX_CELLS, the offer to build it in the
    background). An invalid query is the form with its errors (400)."""
    context = _context(request, external_id)
    organization = context["organization"]
    if not request.GET:
        today = _today(organization)
        form = report_form(None)
        form.initial = {"start": today.replace(day=1), "end": today, "granularity": "day"}
        return _page(request, context, form)
    form = report_form(request.GET)
    if not form.is_valid():
        return _page(request, context, form, status=400)
    spec = form.spec()
    cells = report_cells(spec=spec, zone=ZoneInfo(organization.timezone))
    if cells > SYNC_MAX_CELLS:
        return _page(request, context, form, spec=spec, large=cells)
    report = report_build(organization=organization, spec=spec)
    return _page(request, context, form, spec=spec, report=report, query=request.GET.urlencode())


@login_required
@require_GET
def report_download(request, external_id: str, fmt: str):
    """The report of the query as CSV or XLSX, built in the request (small reports only)."""
    context = _context(request, external_id)
    if fmt not in FILES:
        raise Http404("No such format.")
    organization = context["organization"]
    form = report_form(request.GET)
    if not form.is_valid():
        return _page(request, context, form, status=400)
    spec = form.spec()
    if report_cells(spec=spec, zone=ZoneInfo(organization.timezone)) > SYNC_MAX_CELLS:
        return _page(
            request, context, form, status=400, error="This report is too large to download at once: build it below."
        )
    content_type, write = FILES[fmt]
    response = HttpResponse(write(report_build(organization=organization, spec=spec)), content_type=content_type)
    name = f"usage-{organization.external_id}-{spec.start}-{spec.end}-{spec.granularity}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_POST
def report_export_create(request, external_id: str):
    context = _context(request, external_id)
    form = report_form(request.POST)
    if not form.is_valid():
        return _page(request, context, form, status=400)
    export = report_export_request(actor=request.user, organization=context["organization"], spec=form.spec())
    return redirect("portal:report_export", external_id=external_id, export_id=export.pk)


def _export_get(organization, export_id: int) -> ReportExport:
    export = ReportExport.objects.filter(pk=export_id, organization=organization).first()
    if export is None:
        raise Http404("No such report.")
    return export


@login_required
@require_GET
def report_export(request, external_id: str, export_id: int):
    """The export's progress; htmx polls the panel until it is ready or failed."""
    context = _context(request, external_id)
    context["export"] = _export_get(context["organization"], export_id)
    if request.headers.get("HX-Request") == "true":
        return render(request, "portal/_report_export.html", context)
    return render(request, "portal/report_export.html", context)


@login_required
@require_GET
def report_export_file(request, external_id: str, export_id: int, fmt: str):
    context = _context(request, external_id)
    export = _export_get(context["organization"], export_id)
    if fmt not in FILES or export.status != ReportExport.Status.DONE:
        raise Http404("No such file.")
    stored = getattr(export, fmt)
    with stored.open("rb") as handle:
        response = HttpResponse(handle.read(), content_type=FILES[fmt][0])
    response["Content-Disposition"] = f'attachment; filename="usage-report-{export.pk}.{fmt}"'
    return response


@login_required
@require_GET
def statement(request, external_id: str):
    """The monthly statement PDF of ?month=YYYY-MM (a local calendar month, not in the future)."""
    context = _context(request, external_id)
    organization = context["organization"]
    value = request.GET.get("month", "")
    try:
        month = datetime.strptime(value, "%Y-%m").date() if len(value) == 7 else None
    except ValueError:
        month = None
    if month is None or month > _today(organization) or month.year < 2000:
        return _page(
            request,
            context,
            report_form(None),
            status=400,
            statement_error="Choose a month (YYYY-MM) that has begun.",
        )
    pdf = statement_pdf(statement_get(organization=organization, month=month))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="statement-{organization.external_id}-{value}.pdf"'
    return response
