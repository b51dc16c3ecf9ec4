from __future__ import annotations

from datetime import UTC, datetime

from django.test import Client

from tests.factories import PASSWORD, totp_now


def utc(*args: int) -> datetime:
    """`utc(2027, 4, 1)`: an aware datetime in UTC."""
    return datetime(*args, tzinfo=UTC)


def staff_login(client: Client, *, email: str, totp_secret: str) -> None:
    """Sign in through allauth's real flow: password, then the TOTP stage."""
    response = client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    assert response["Location"] == "/accounts/2fa/authenticate/"
    response = client.post("/accounts/2fa/authenticate/", {"code": totp_now(totp_secret)})
    assert response.status_code == 302, response.content[:2000]


def jwt_login(client: Client, *, email: str) -> str:
    """Sign in through allauth headless (app client) and return the JWT access token."""
    response = client.post(
        "/_allauth/app/v1/auth/login", {"email": email, "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 200, response.content[:500]
    return response.json()["meta"]["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def api_post(client: Client, path: str, body, key: str):
    """POST `body` as JSON with `key` as the bearer token."""
    return client.post(path, body, content_type="application/json", **bearer(key))


def jwt_login_mfa(client: Client, *, email: str, totp_secret: str) -> str:
    """Sign in through allauth headless with the second factor (password, then
    `/_allauth/app/v1/auth/2fa/authenticate`) and return the JWT access token."""
    response = client.post(
        "/_allauth/app/v1/auth/login", {"email": email, "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 401, response.content[:500]
    body = response.json()
    assert [f["id"] for f in body["data"]["flows"] if f.get("is_pending")] == ["mfa_authenticate"], body
    response = client.post(
        "/_allauth/app/v1/auth/2fa/authenticate",
        {"code": totp_now(totp_secret)},
        content_type="application/json",
        HTTP_X_SESSION_TOKEN=body["meta"]["session_token"],
    )
    assert response.status_code == 200, response.content[:500]
    return response.json()["meta"]["access_token"]


def oauth_client_create(*, client_id: str, scopes: list[str], grant_types: list[str]):
    """An OAuth2 client of the current tenant's allauth OIDC provider (secret = `<id>-secret`)."""
    from allauth.idp.oidc.models import Client as OIDCClient

    oidc = OIDCClient(name=client_id, id=client_id, type=OIDCClient.Type.CONFIDENTIAL)
    oidc.set_secret(f"{client_id}-secret")
    oidc.set_scopes(scopes)
    oidc.set_grant_types(grant_types)
    if "authorization_code" in grant_types:
        oidc.set_response_types(["code"])
        oidc.set_redirect_uris(["https://app.example/callback"])
    oidc.save()
    return oidc


def oauth_client_credentials_token(client: Client, *, client_id: str, scope: str) -> str:
    response = client.post(
        "/identity/o/api/token",
        {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_id": client_id,
            "client_secret": f"{client_id}-secret",
        },
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def oauth_authorization_code_token(client: Client, *, client_id: str, scope: str) -> str:
    """The real authorization-code flow for the user signed in on `client`: the consent form is
    granted with every requested scope, then the code is exchanged for an access token."""
    from urllib.parse import parse_qs, urlencode, urlparse

    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": "https://app.example/callback",
            "scope": scope,
            "state": "s1",
        }
    )
    form = client.get(f"/identity/o/authorize?{query}")
    assert form.status_code == 200, form.content[:1000]
    consent = client.post(
        f"/identity/o/authorize?{query}",
        {"request": form.context["form"].initial["request"], "scopes": scope.split(), "action": "grant"},
    )
    assert consent.status_code == 302, consent.content[:1000]
    code = parse_qs(urlparse(consent["Location"]).query)["code"][0]
    response = client.post(
        "/identity/o/api/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://app.example/callback",
            "client_id": client_id,
            "client_secret": f"{client_id}-secret",
        },
    )
    assert response.status_code == 200, response.content
    token = response.json()
    assert set(token["scope"].split()) == set(scope.split())
    return token["access_token"]
