"""One `Authorization: Bearer …` scheme for every machine and API caller of a tenant:

- `bk_…` → an API key of this tenant (accounts.APIKey);
- a JWT (three dot-separated parts) → allauth headless access token, validated statefully against
  a session in this tenant's schema (that session also says whether a staff user passed the
  second factor);
- anything else → an OAuth2 access token issued by this tenant's allauth OIDC provider: client
  credentials (a machine, no user) or authorization code (a user granted it to a client).

Browser calls with the session cookie go through SessionPrincipalAuthentication.

Everything is looked up in the current tenant's schema, so credentials of tenant A mean nothing on
tenant B's host.
"""

from __future__ import annotations

from allauth.headless.tokens.strategies.jwt.internal import decode_token, get_token_session, validate_token_user
from allauth.idp.oidc.contrib.rest_framework.authentication import TokenAuthentication as OIDCTokenAuthentication
from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header

from accounts.api.principal import ApiPrincipal, session_principal, user_scopes
from accounts.audit import audit_origin_set
from accounts.models.api_key import KEY_PREFIX
from accounts.selectors.api_key import apikey_get_active
from core.errors import DomainError


class CredentialError(DomainError):
    """The bearer credential is not valid here; answered 401 (DRF's AuthenticationFailed for the
    API views, the ingestion endpoint's own error otherwise)."""

    status_code = 401

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


def principal_from_bearer(request) -> ApiPrincipal | None:
    """Authenticate a Django request's bearer credential in the current tenant. None when there is
    no bearer header; CredentialError when there is one and it is not valid here."""
    header = get_authorization_header(request).decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not token:
        raise CredentialError("invalid_token", "Empty bearer token.")
    if token.startswith(KEY_PREFIX):
        return _api_key(token)
    if token.count(".") == 2:
        return _jwt(token)
    return _oauth(request)


def _api_key(token: str) -> ApiPrincipal:
    key = apikey_get_active(raw_key=token)
    if key is None:
        raise CredentialError("invalid_api_key", "Unknown or revoked API key.")
    audit_origin_set(actor=None, origin="api_key", details={"api_key": key.name, "api_key_prefix": key.prefix})
    return ApiPrincipal(
        kind="api_key",
        label=f"api_key:{key.name}",
        scopes=frozenset(key.scopes),
        key_id=key.pk,
        organization_id=key.organization_id,
    )


def _jwt(token: str) -> ApiPrincipal:
    # allauth's validate_access_token with HEADLESS_JWT_STATEFUL_VALIDATION_ENABLED, unrolled to
    # keep the session it looks up: whether a staff user passed the second factor is recorded
    # there (the login and /_allauth/app/v1/auth/2fa/authenticate write to it), not in the token.
    payload = decode_token(token, "access")
    session = get_token_session(payload) if payload is not None else None
    user = validate_token_user(payload, session) if session is not None else None
    if user is None:
        raise CredentialError("invalid_token", "Invalid or expired access token.")
    if not user.is_active:
        raise CredentialError("invalid_token", "User inactive.")
    audit_origin_set(actor=user, origin="jwt")
    return session_principal(kind="jwt", user=user, session=session)


def _oauth(request) -> ApiPrincipal:
    # allauth's class reads the raw Django request (it must not parse the JSON body).
    result = OIDCTokenAuthentication().authenticate(request)
    if result is None:
        raise CredentialError("invalid_token", "Invalid or expired access token.")
    user, access_token = result
    client_name = access_token.client.name if access_token.client else "unknown"
    audit_origin_set(actor=user, origin="oauth_client", details={"oauth_client": client_name})
    scopes = frozenset(access_token.get_scopes())
    if user is None:  # client credentials: a machine acting for the tenant
        return ApiPrincipal(
            kind="oauth_client",
            label=f"oauth_client:{client_name}",
            scopes=scopes,
            key_id=f"oauth:{access_token.client_id}",
        )
    if not user.is_active:
        raise CredentialError("invalid_token", "User inactive.")
    # Authorization code: the client acts for the user who consented, so never with more than
    # that user may do, whatever scopes the client holds (a customer member consenting to a
    # `write` client still only reads). A staff user can only have consented from a session that
    # passed the second factor (accounts.middleware guards the authorization endpoints).
    return ApiPrincipal(
        kind="oauth_user",
        label=f"oauth_client:{client_name}:user:{user.email}",
        scopes=scopes & user_scopes(user),
        user=user,
        key_id=f"oauth:{access_token.client_id}",
        mfa_passed=user.is_staff,
    )


class BearerAuthentication(BaseAuthentication):
    """DRF's face of principal_from_bearer."""

    def authenticate(self, request):
        try:
            principal = principal_from_bearer(request._request)
        except CredentialError as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from None
        if principal is None:
            return None
        user = principal.user if principal.user is not None else AnonymousUser()
        return user, principal

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class SessionPrincipalAuthentication(SessionAuthentication):
    """DRF's session authentication (with its CSRF check), answering with the caller's
    principal, including whether a staff user's session passed the second factor."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        return user, session_principal(kind="session", user=user, session=request._request.session)
