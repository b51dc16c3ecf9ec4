from __future__ import annotations

from rest_framework.permissions import BasePermission

from accounts.api.principal import principal_get


class DenyAll(BasePermission):
    """The default: a view states what it needs (ScopePermission) or nobody gets in."""

    def has_permission(self, request, view) -> bool:
        return False


class ScopePermission(BasePermission):
    """Requires the scope the view names for the request's method in `required_scopes`, e.g.
    {"GET": "read", "POST": "write"}. Unknown methods need a scope nobody has."""

    message = "This credential lacks the scope this request needs."

    def has_permission(self, request, view) -> bool:
        principal = principal_get(request)
        if principal is None:
            return False
        needed = view.required_scopes.get(request.method, view.required_scopes.get("*", "__none__"))
        if needed not in principal.scopes:
            self.message = f"This credential lacks the '{needed}' scope this request needs."
            return False
        return True
