"""The portal's team page (issue 13 flow 9): the organization's members and their roles, invite
by email, change a role, remove a member; the signed-in user's own password and authenticator
(allauth's pages); read-only usage API keys for the organization.

Every member sees the team; owners and admins manage it (others get 403 on every POST), behind
Django's CSRF middleware. Writes go through services that audit with the signed-in user:
billing.services.membership and accounts.services.api_key. A usage key reads this organization's
usage through the usage API and nothing else (APIKey.organization); its secret is in the one
response that creates it and never again (only a digest is stored)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.models import APIKey, APIKeyScope
from accounts.services.api_key import APIKeyError, apikey_create, apikey_revoke
from billing.models import MemberRole, Membership
from billing.services.membership import ASSIGNABLE_ROLES, membership_invite, membership_remove, membership_role_set
from core.errors import DomainError
from portal import selectors

TEAM_ROLES = frozenset({MemberRole.OWNER, MemberRole.ADMIN})


def _page(request, external_id: str) -> dict:
    organization, organizations = selectors.portal_organization_get(user=request.user, external_id=external_id)
    members = list(
        Membership.objects.filter(organization=organization).select_related("user").order_by("created_at", "pk")
    )
    mine = next(m for m in members if m.user_id == request.user.pk)
    return {
        "organization": organization,
        "organizations": organizations,
        "section": "team",
        "members": members,
        "me": mine,
        "can_manage": mine.role in TEAM_ROLES,
        "roles": [(role.value, role.label) for role in ASSIGNABLE_ROLES],
        "keys": APIKey.objects.filter(organization=organization, revoked_at__isnull=True).order_by("created_at"),
    }


def _managing(request, external_id: str) -> dict:
    context = _page(request, external_id)
    if not context["can_manage"]:
        raise PermissionDenied("Only owners and admins manage the team.")
    return context


def _refused(request, context: dict, message: str):
    context["error"] = message
    return render(request, "portal/team.html", context, status=400)


def _member_id(request) -> int:
    value = request.POST.get("member", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 12 else 0


@login_required
@require_GET
def team(request, external_id: str):
    return render(request, "portal/team.html", _page(request, external_id))


@login_required
@require_POST
def member_invite(request, external_id: str):
    context = _managing(request, external_id)
    email = request.POST.get("email", "")
    try:
        membership_invite(
            actor=request.user,
            organization=context["organization"],
            email=email,
            role=request.POST.get("role", ""),
            base_url=request.build_absolute_uri("/"),
        )
    except DomainError as exc:
        return _refused(request, context, exc.message)
    messages.success(request, f"{email.strip().lower()} was added to the team.")
    return redirect("portal:team", external_id=external_id)


@login_required
@require_POST
def member_role(request, external_id: str):
    context = _managing(request, external_id)
    try:
        membership_role_set(
            actor=request.user,
            organization=context["organization"],
            membership_id=_member_id(request),
            role=request.POST.get("role", ""),
        )
    except DomainError as exc:
        return _refused(request, context, exc.message)
    messages.success(request, "The role was changed.")
    return redirect("portal:team", external_id=external_id)


@login_required
@require_POST
def member_remove(request, external_id: str):
    context = _managing(request, external_id)
    try:
        membership_remove(actor=request.user, organization=context["organization"], membership_id=_member_id(request))
    except DomainError as exc:
        return _refused(request, context, exc.message)
    messages.success(request, "The member was removed.")
    if not Membership.objects.filter(user=request.user, organization=context["organization"]).exists():
        return redirect("portal:home")  # an admin who removed themselves
    return redirect("portal:team", external_id=external_id)


@login_required
@require_POST
def usage_key_create(request, external_id: str):
    """Answers with the page itself, carrying the secret: it is shown in this response only."""
    context = _managing(request, external_id)
    name = request.POST.get("name", "")[:100]
    try:
        created = apikey_create(
            name=name, scopes=[APIKeyScope.READ], actor=request.user, organization=context["organization"]
        )
    except APIKeyError as exc:
        return _refused(request, context, exc.message.replace("name must not be empty", "Give the key a name."))
    context = _page(request, external_id)
    context["created"] = created
    response = render(request, "portal/team.html", context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def usage_key_revoke(request, external_id: str):
    context = _managing(request, external_id)
    key = APIKey.objects.filter(
        organization=context["organization"], revoked_at__isnull=True, prefix=request.POST.get("key", "")[:16]
    ).first()
    if key is None:
        return _refused(request, context, "No such key.")
    apikey_revoke(api_key=key, actor=request.user)
    messages.success(request, f"The key {key.prefix}… was revoked.")
    return redirect("portal:team", external_id=external_id)
