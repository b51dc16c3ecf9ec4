from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render

from billing.selectors.organization import organization_list_for_user
from billing.selectors.usage import organization_usage_current
from metering.selectors.meter import meter_list


@login_required
def home(request):
    organizations = list(organization_list_for_user(user=request.user))
    if len(organizations) == 1:
        return redirect("portal:organization", external_id=organizations[0].external_id)
    if not organizations and request.user.is_staff:
        return redirect("adminpanel:home")
    return render(request, "portal/home.html", {"organizations": organizations})


@login_required
def organization_detail(request, external_id: str):
    # Scoped to the user's own memberships: another organization's page is a 404, not a 403,
    # so its existence is not revealed.
    organizations = list(organization_list_for_user(user=request.user))
    organization = next((o for o in organizations if o.external_id == external_id), None)
    if organization is None:
        raise Http404("No such organization.")
    usage = organization_usage_current(organization=organization)
    context = {
        "usage": usage,
        "meters": [(meter, usage.meters.get(meter.code)) for meter in meter_list()],
        "organization": organization,
        "subscription": usage.subscription,
        "organizations": organizations,
    }
    return render(request, "portal/organization.html", context)
