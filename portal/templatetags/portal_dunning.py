"""`{% dunning_banner %}` in portal/base.html: on every page of an organization in dunning, its
state, what it owes, what is blocked (or will be) and from when, and a pay-now link to the oldest
overdue invoice. A tag rather than each view's context, so a page added later cannot forget it."""

from __future__ import annotations

from django import template

from billing.models import Membership, OrganizationStatus
from dunning.selectors import dunning_banner_get
from portal.payment_views import BILLING_ROLES

register = template.Library()

STATUS_TEXT = {
    "past_due": "Your account is past due",
    "suspended": "Your account is suspended",
    "final": "Your account is suspended after the final notice",
}


@register.inclusion_tag("portal/_dunning_banner.html", takes_context=True)
def dunning_banner(context) -> dict:
    organization = context["organization"]
    # Dunning mirrors its state onto the organization, already loaded: a page of an organization
    # in good standing (nearly all of them) costs no query for the banner.
    if organization.status not in (OrganizationStatus.PAST_DUE, OrganizationStatus.SUSPENDED):
        return {"banner": None}
    banner = dunning_banner_get(organization_id=organization.pk)
    if banner is None:
        return {"banner": None}
    can_pay = context.get("can_pay")
    if can_pay is None:  # pages whose view did not look the role up already
        request = context["request"]
        can_pay = Membership.objects.filter(
            user=request.user, organization=organization, role__in=BILLING_ROLES
        ).exists()
    return {
        "banner": banner,
        "headline": STATUS_TEXT.get(banner.status, "Your account is past due"),
        "organization": organization,
        "can_pay": can_pay,
    }
