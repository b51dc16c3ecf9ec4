"""What an API request needs. Every view declares, per HTTP method, an `Access`: the credential
scope (read or write), the Django permission a staff user's role must allow (the same
accounts.backends.staff_role_allows that serves the admin and the staff pages) and whether
customer members may call it at all (only reads of their own organizations' data; the view's
selectors scope what they see). A method a view does not declare is refused to everyone.

Effective permission = what the credential carries ∩ what its user may do:
- API keys and OAuth2 client-credentials tokens (no user): their scopes.
- JWTs, browser sessions and OAuth2 authorization-code tokens (a user): the credential's scopes ∩
  the user's (accounts.api.principal.user_scopes), then the staff role's permission or, for a
  customer member, the view's `members` flag. A staff user whose session did not pass the second
  factor has no staff power: 403 `mfa_required`.

OPTIONS answers any valid credential with the view's metadata (allowed methods, request fields;
no data), so it is 200 for callers and 401 for anonymous ones, never 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from accounts.api.principal import ApiPrincipal, principal_get, user_scopes
from accounts.backends import staff_role_allows
from accounts.models import APIKeyScope


@dataclass(frozen=True)
class Access:
    scope: str  # the credential scope the request needs
    perm: str  # the Django permission (`<app>.<action>_<model>`) a staff role needs
    members: bool = False  # customer members may call it (reads of their own organizations only)
    # an organization's usage key may call it (APIKey.organization; the view's selectors then see
    # only that organization)
    organization_keys: bool = False


def read(perm: str, *, members: bool = False, organization_keys: bool = False) -> Access:
    return Access(APIKeyScope.READ, perm, members, organization_keys)


def write(perm: str) -> Access:
    return Access(APIKeyScope.WRITE, perm)


class MfaRequired(exceptions.PermissionDenied):
    default_code = "mfa_required"
    default_detail = (
        "Staff accounts need a second factor for this. Sign in again and complete the authenticator "
        "step: in a browser at /accounts/2fa/authenticate/ (set one up first at "
        "/accounts/2fa/totp/activate/), or for an app session POST the code to "
        "/_allauth/app/v1/auth/2fa/authenticate and use the access token it returns."
    )


class DenyAll(BasePermission):
    """The default: a view states what it needs (AccessPermission) or nobody gets in."""

    def has_permission(self, request, view) -> bool:
        return False


def access_get(view, method: str) -> Access | None:
    declared = getattr(view, "access", {})
    if method == "HEAD":
        method = "GET"  # Django and DRF answer HEAD with the GET handler
    return declared.get(method)


class AccessPermission(BasePermission):
    """Checks the view's `access` declaration for the request's method against the caller."""

    message = "This request is not allowed."

    def has_permission(self, request, view) -> bool:
        principal = principal_get(request)
        if principal is None:
            return False  # DRF answers 401 not_authenticated
        if request.method == "OPTIONS":
            return True
        access = access_get(view, request.method)
        if access is None:
            self.message = f"{request.method} is not allowed here."
            return False
        if principal.is_staff and not principal.mfa_passed:
            raise MfaRequired()
        if access.scope not in principal.scopes:
            self.message = self._scope_refusal(principal, access)
            return False
        if principal.organization_id is not None and not access.organization_keys:
            self.message = "This key reads its organization's usage only."
            return False
        if principal.user is None:
            return True
        if principal.is_staff:
            role = principal.user.staff_role
            if staff_role_allows(role, access.perm):
                return True
            self.message = f"The {role} staff role may not do this (it needs the {access.perm} permission)."
            return False
        if access.members:
            return True
        self.message = _MEMBER_REFUSAL
        return False

    @staticmethod
    def _scope_refusal(principal: ApiPrincipal, access: Access) -> str:
        user = principal.user
        if user is not None and access.scope not in user_scopes(user):
            if user.staff_role is None:
                return _MEMBER_REFUSAL
            return f"The {user.staff_role} staff role may not do this (it reads only)."
        return f"This credential lacks the '{access.scope}' scope this request needs."


_MEMBER_REFUSAL = (
    "Customer members may only read their own organizations' data; this request needs a staff role "
    "or a machine credential."
)
