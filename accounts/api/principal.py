from __future__ import annotations

from dataclasses import dataclass

from accounts.models import APIKeyScope, StaffRole, User


@dataclass(frozen=True)
class ApiPrincipal:
    """Who is calling the API and what it may do. `user` is set for people (JWT or session);
    machine callers (API keys, OAuth2 clients) act for the whole tenant."""

    kind: str  # "api_key" | "oauth_client" | "user"
    label: str
    scopes: frozenset[str]
    user: User | None = None
    key_id: int | str | None = None  # the credential, for per-credential rate limits

    @property
    def is_customer_member(self) -> bool:
        """A person without a staff role: sees only the organizations they belong to."""
        return self.user is not None and self.user.staff_role is None


def user_scopes(user: User) -> frozenset[str]:
    if user.staff_role is None:
        return frozenset({APIKeyScope.READ})
    if user.staff_role == StaffRole.VIEWER:
        return frozenset({APIKeyScope.READ})
    return frozenset({APIKeyScope.READ, APIKeyScope.WRITE})


def principal_get(request) -> ApiPrincipal | None:
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiPrincipal):
        return auth
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active:
        # Session-authenticated browser calls (the portal).
        return ApiPrincipal(kind="user", label=f"user:{user.email}", scopes=user_scopes(user), user=user)
    return None
