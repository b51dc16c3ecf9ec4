from __future__ import annotations

from django.test import Client

from tests.factories import PASSWORD, totp_now


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
