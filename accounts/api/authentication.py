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


class BearerAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request).decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        if not token:
            raise exceptions.AuthenticationFailed("Empty bearer token.", code="invalid_token")
        if token.startswith(KEY_PREFIX):
            return self._api_key(token)
        if token.count(".") == 2:
            return self._jwt(token)
        return self._oauth(request)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

    def _api_key(self, token: str):
        key = apikey_get_active(raw_key=token)
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.", code="invalid_api_key")
        audit_origin_set(actor=None, origin="api_key", details={"api_key": key.name, "api_key_prefix": key.prefix})
        principal = ApiPrincipal(kind="api_key", label=f"api_key:{key.name}", scopes=frozenset(key.scopes))
        return AnonymousUser(), principal

    def _jwt(self, token: str):
        result = validate_access_token(token)
        if result is None:
            raise exceptions.AuthenticationFailed("Invalid or expired access token.", code="invalid_token")
        user, _payload = result
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive.", code="invalid_token")
        audit_origin_set(actor=user, origin="jwt")
        return user, ApiPrincipal(kind="user", label=f"user:{user.email}", scopes=user_scopes(user), user=user)

    def _oauth(self, request):
        # allauth's class reads the raw Django request (it must not parse the JSON body).
        result = OIDCTokenAuthentication().authenticate(request._request)
        if result is None:
            raise exceptions.AuthenticationFailed("Invalid or expired access token.", code="invalid_token")
        user, access_token = result
        client_name = access_token.client.name if access_token.client else "unknown"
        audit_origin_set(actor=user, origin="oauth_client", details={"oauth_client": client_name})
        principal = ApiPrincipal(
            kind="oauth_client",
            label=f"oauth_client:{client_name}",
            scopes=frozenset(access_token.get_scopes()),
            user=user,
        )
        return user or AnonymousUser(), principal
