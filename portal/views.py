"""The customer portal's pages. Each resolves the organization from the signed-in user's own
memberships first (portal_organization_get: another organization's id is a 404, so its existence
is not revealed), then calls one selector and renders. Dates render in the organization's
timezone (the `{% timezone %}` block of portal/base.html)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from billing.models import Membership
from billing.selectors.organization import organization_list_for_user
from portal import selectors
from portal.payment_views import BILLING_ROLES
from portal.projection import BACKTEST_NOTE


def _period_index(request) -> int:
    value = request.GET.get("period", "0")
    if not value.isascii() or not value.isdigit() or len(value) > 3:
        raise Http404("No such period.")
    return int(value)


@login_required
@require_GET
def home(request):
    organizations = list(organization_list_for_user(user=request.user))
    if len(organizations) == 1:
        return redirect("portal:organization", external_id=organizations[0].external_id)
    if not organizations and request.user.is_staff:
        return redirect("adminpanel:home")
    return render(request, "portal/home.html", {"organizations": organizations})


def _base(request, external_id: str, section: str) -> dict:
    organization, organizations = selectors.portal_organization_get(user=request.user, external_id=external_id)
    return {"organization": organization, "organizations": organizations, "section": section}


@login_required
@require_GET
def organization_detail(request, external_id: str):
    """The dashboard: spend so far, usage per meter by day, group breakdowns; ?period=N shows the
    Nth period before the current one. htmx requests get the panel only (period switching and
    the live refresh)."""
    context = _base(request, external_id, "dashboard")
    context["dashboard"] = selectors.dashboard_get(
        organization=context["organization"], period_index=_period_index(request)
    )
    if request.headers.get("HX-Request") == "true":
        return render(request, "portal/_usage_panel.html", context)
    return render(request, "portal/dashboard.html", context)


@login_required
@require_GET
def billing_history(request, external_id: str):
    context = _base(request, external_id, "billing")
    context["rows"] = selectors.billing_history_list(organization=context["organization"])
    context["can_pay"] = (
        Membership.objects.filter(user=request.user, organization=context["organization"], role__in=BILLING_ROLES)
    ).exists()
    return render(request, "portal/billing.html", context)


@login_required
@require_GET
def invoice_pdf(request, external_id: str, invoice_id: int):
    """The invoice as issued (the stored PDF; a void one with its VOID stamp), for members of its
    organization only; drafts have none."""
    from invoicing.services.pdf_store import invoice_pdf_open

    context = _base(request, external_id, "billing")
    invoice = selectors.invoice_for_download_get(organization=context["organization"], invoice_id=invoice_id)
    try:
        stored = invoice_pdf_open(invoice=invoice)
    except FileNotFoundError:
        raise Http404("The PDF of this invoice is unavailable.") from None
    return FileResponse(stored, as_attachment=True, filename=f"{invoice.number}.pdf", content_type="application/pdf")


@login_required
@require_GET
def projection(request, external_id: str):
    context = _base(request, external_id, "projection")
    context["forecast"] = selectors.forecast_get(organization=context["organization"])
    context["backtest_note"] = BACKTEST_NOTE
    return render(request, "portal/projection.html", context)
