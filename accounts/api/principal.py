from __future__ import annotations

from dataclasses import dataclass

from accounts.models import APIKeyScope, StaffRole, User
from accounts.selectors.staff import StaffAccess, staff_session_access_get


@dataclass(frozen=True)
class ApiPrincipal:
    """Who is calling the API and what it may do. Machine callers (API keys, OAuth2 client
    credentials) have no `user` and act for the whole tenant within their scopes. People (a JWT
    or browser session, or an OAuth2 authorization-code token a user granted) have a `user`:
    their `scopes` are the credential's intersected with what the user's role can hold
    (`user_scopes`), and accounts.api.permissions adds the role's permissions on top."""

    kind: str  # "api_key" | "oauth_client" | "oauth_user" | "jwt" | "session"
    label: str
    scopes: frozenset[str]
    user: User | None = None
    key_id: int | str | None = None  # the credential, for per-credential rate limits
    # For staff: the session behind the credential passed the second factor (see
    # accounts.selectors.staff); without it a staff user has no staff power.
    mfa_passed: bool = False
    # An organization's usage key (APIKey.organization): reads that organization's usage only.
    organization_id: int | None = None

    @property
    def is_customer_member(self) -> bool:
        """A person without a staff role: sees only the organizations they belong to."""
        return self.user is not None and self.user.staff_role is None

    @property
    def is_staff(self) -> bool:
        return self.user is not None and self.user.staff_role is not None


# What a person's credential can ever carry: reading for customer members and viewers, reading
# and writing for the other staff roles (what exactly they may write is the role's permissions).
# Never `ingest`: sending usage events is a machine's job (API keys, client credentials), so a
# token a customer granted cannot count usage for anyone.
_MEMBER_SCOPES = frozenset({APIKeyScope.READ})
_STAFF_WRITER_SCOPES = frozenset({APIKeyScope.READ, APIKeyScope.WRITE})


def user_scopes(user: User) -> frozenset[str]:
    if user.staff_role is None or user.staff_role == StaffRole.VIEWER:
        return _MEMBER_SCOPES
    return _STAFF_WRITER_SCOPES


def session_principal(*, kind: str, user: User, session) -> ApiPrincipal:
    """A person signed in with a session: the browser's cookie session, or the headless session
    a JWT names. The session is the user's whole authority (no narrower scopes)."""
    mfa_passed = user.is_staff and staff_session_access_get(user=user, session=session) is StaffAccess.GRANTED
    return ApiPrincipal(
        kind=kind, label=f"user:{user.email}", scopes=user_scopes(user), user=user, mfa_passed=mfa_passed
    )


def principal_get(request) -> ApiPrincipal | None:
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiPrincipal):
        return auth
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active:
        # A Django request (not DRF's) with a browser session.
        return session_principal(kind="session", user=user, session=request.session)
    return None
