"""One `Authorization: Bearer …` scheme for every machine and API caller of a tenant:

- `bk_…` → an API key of this tenant (accounts.APIKey);
- a JWT (three dot-separated parts) → allauth headless access token, validated statefully against
  a session in this tenant's schema;
- anything else → an OAuth2 access token issued by this tenant's allauth OIDC provider
  (client credentials).

Everything is looked up in the current tenant's schema, so credentials of tenant A mean nothing on
tenant B's host.
"""

from __future__ import annotations

from allauth.headless.tokens.strategies.jwt.internal import validate_access_token
from allauth.idp.oidc.contrib.rest_framework.authentication import TokenAuthentication as OIDCTokenAuthentication
from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.api.principal import ApiPrincipal, user_scopes
from accounts.audit import audit_origin_set
from accounts.selectors.api_key import apikey_get_active
from accounts.services.api_key import KEY_PREFIX


class CredentialError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


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
    return ApiPrincipal(kind="api_key", label=f"api_key:{key.name}", scopes=frozenset(key.scopes), key_id=key.pk)


def _jwt(token: str) -> ApiPrincipal:
    result = validate_access_token(token)
    if result is None:
        raise CredentialError("invalid_token", "Invalid or expired access token.")
    user, _payload = result
    if not user.is_active:
        raise CredentialError("invalid_token", "User inactive.")
    audit_origin_set(actor=user, origin="jwt")
    return ApiPrincipal(kind="user", label=f"user:{user.email}", scopes=user_scopes(user), user=user)


def _oauth(request) -> ApiPrincipal:
    # allauth's class reads the raw Django request (it must not parse the JSON body).
    result = OIDCTokenAuthentication().authenticate(request)
    if result is None:
        raise CredentialError("invalid_token", "Invalid or expired access token.")
    user, access_token = result
    client_name = access_token.client.name if access_token.client else "unknown"
    audit_origin_set(actor=user, origin="oauth_client", details={"oauth_client": client_name})
    return ApiPrincipal(
        kind="oauth_client",
        label=f"oauth_client:{client_name}",
        scopes=frozenset(access_token.get_scopes()),
        user=user,
        key_id=f"oauth:{access_token.client_id}",
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
