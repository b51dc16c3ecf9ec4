"""The staff's accounting exports page (issue 14, item 5): ask for an export of a period, watch its
progress (htmx polls the row, as the portal's usage reports do), download its CSV or XLSX.
Asking is finance's (invoicing.add_accountingexport: owner, admin, finance), downloading every
staff role's (they read everything); both write an audit entry. The datasets and the task are
adminpanel.exports."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import audit_actor, audit_event
from adminpanel.exports import DATASETS, Spec, accounting_export_request
from adminpanel.views import _allowed
from invoicing.models import AccountingExport
from tenants.validators import validate_currency

EXPORTS_SHOWN = 20
FILES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
MAX_DAYS = 366  # a year a file: what an accountant imports at once, and a bound on the task


class ExportForm(forms.Form):
    kind = forms.ChoiceField(choices=[(key, d.label) for key, d in DATASETS.items()], label="Export")
    start = forms.DateField(label="From (UTC day)", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (UTC day, included)", widget=forms.DateInput(attrs={"type": "date"}))
    currency = forms.CharField(required=False, max_length=3, label="Currency (QuickBooks and Xero: required)")
    tax_rate = forms.CharField(
        required=False, max_length=50, initial="Tax Exempt", label="Xero tax rate name (a rate without tax)"
    )

    def clean_currency(self) -> str:
        value = self.cleaned_data["currency"].strip().upper()
        if value:
            validate_currency(value)
        return value

    def clean(self):
        data = super().clean()
        kind, start, end = data.get("kind"), data.get("start"), data.get("end")
        if start and end:
            if end < start:
                self.add_error("end", "The last day must not be before the first.")
            elif (end - start).days >= MAX_DAYS:
                self.add_error("end", f"At most {MAX_DAYS} days an export.")
        if kind and DATASETS[kind].one_currency and not data.get("currency"):
            self.add_error("currency", "QuickBooks and Xero import one currency: give it.")
        if kind == "journal_xero" and not data.get("tax_rate", "").strip():
            self.add_error("tax_rate", "Xero needs a tax rate name on every line.")
        return data

    def spec(self) -> Spec:
        data = self.cleaned_data
        tax_rate = data["tax_rate"].strip() if data["kind"] == "journal_xero" else ""
        return Spec(data["start"], data["end"], data["currency"], tax_rate)


def _page(request, form: ExportForm, *, status: int = 200):
    # accounts.middleware.StaffAccessMiddleware admits only staff who passed their second factor.
    exports = AccountingExport.objects.select_related("requested_by")[:EXPORTS_SHOWN]
    context = {"section": "exports", "form": form, "exports": exports, "datasets": DATASETS}
    return render(request, "adminpanel/exports.html", context, status=status)


@require_GET
def exports(request):
    return _page(request, ExportForm(initial={"tax_rate": "Tax Exempt"}))


@require_POST
def export_create(request):
    """Store the export and enqueue it; a refused form (400) stores and enqueues nothing."""
    _allowed(request, "invoicing.add_accountingexport")
    form = ExportForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    with audit_actor(request.user):
        export = accounting_export_request(actor=request.user, kind=form.cleaned_data["kind"], spec=form.spec())
        audit_event(export, event="export.requested", kind=export.kind, **export.spec)
    messages.success(request, f"{DATASETS[export.kind].label}: building in the background.")
    return redirect("adminpanel:exports")


def _export(pk: int) -> AccountingExport:
    export = AccountingExport.objects.filter(pk=pk).first()
    if export is None:
        raise Http404("No such export.")
    return export


@require_GET
def export_status(request, pk: int):
    """One export's row; htmx polls it until it is ready or failed."""
    export = _export(pk)
    return render(request, "adminpanel/_export_row.html", {"export": export, "datasets": DATASETS})


@require_GET
def export_file(request, pk: int, fmt: str):
    _allowed(request, "invoicing.view_accountingexport")
    export = _export(pk)
    if fmt not in FILES or export.status != AccountingExport.Status.DONE:
        raise Http404("No such file.")
    stored = getattr(export, fmt)
    with stored.open("rb") as handle:
        content = handle.read()
    with audit_actor(request.user):
        audit_event(export, event="export.downloaded", format=fmt, kind=export.kind, **export.spec)
    response = HttpResponse(content, content_type=FILES[fmt])
    name = stored.name.rsplit("/", 1)[-1].split("-", 1)[1]  # "<pk>-<kind>-<from>-<to>.<fmt>"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
