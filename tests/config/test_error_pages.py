"""Error pages are the site's own (templates/400|403|404|500.html on templates/base.html), with no
debug detail, and DEBUG is off unless asked for, in every DJANGO_ENV (so `make run` does not show
Django's URL list to anyone)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.test import override_settings

from config.embedded import ROOT

SITE = '<link rel="stylesheet" href="/static/vendor/pico.min.css">'  # templates/base.html's head


def page(response) -> str:
    return response.content.decode()


@pytest.mark.django_db
def test_404_is_the_sites_page_without_the_url_list(client_a, tenant_a):
    response = client_a.get("/no/such/page/")
    assert response.status_code == 404
    text = page(response)
    assert SITE in text and "Page not found" in text and "<code>/no/such/page/</code>" in text
    assert f"<strong>{tenant_a.name}</strong>" in text  # the tenant's own header
    assert "URLconf" not in text and "api/v1/" not in text and "Traceback" not in text


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.config.error_urls")
def test_500_403_400_are_the_sites_pages_without_detail(client_a):
    client_a.raise_request_exception = False
    for path, status, title in (
        ("/test-errors/boom/", 500, "Something went wrong on our side"),
        ("/test-errors/forbidden/", 403, "You may not open this page"),
        ("/test-errors/bad/", 400, "This request could not be understood"),
    ):
        response = client_a.get(path)
        assert response.status_code == status
        text = page(response)
        assert SITE in text and title in text, text[:500]
        assert "internal" not in text and "Traceback" not in text and "RuntimeError" not in text


@pytest.mark.django_db
def test_a_customer_at_the_admin_gets_the_sites_403(client_a, in_a):
    from tests.factories import UserFactory

    client_a.force_login(UserFactory())
    for path in ("/admin/", "/staff/"):
        response = client_a.get(path)
        assert response.status_code == 403
        assert SITE in page(response) and "You may not open this page" in page(response)


@pytest.mark.django_db
def test_csrf_failure_is_the_sites_page(tenant_a):
    from django.test import Client

    strict = Client(HTTP_HOST=tenant_a.get_primary_domain().domain, enforce_csrf_checks=True)
    response = strict.post("/accounts/login/", {"login": "a@example.com", "password": "x"})
    assert response.status_code == 403
    assert SITE in page(response) and "This form has expired" in page(response)


@pytest.mark.slow
@pytest.mark.parametrize("django_env", ["development", "test", "production"])
def test_debug_is_off_unless_asked_for(django_env, tmp_path):
    env = {**os.environ, "DJANGO_ENV": django_env, "DATA_DIR": str(tmp_path), "SECRET_KEY": "x" * 50}
    env.update(OIDC_PRIVATE_KEY="unused", FIELD_ENCRYPTION_KEYS="NtkiDprsBsW4sy9PNCLxpvXwyqKedc7ijt-UKNH8CtY=")
    env.pop("DEBUG", None)

    def debug(**extra) -> str:
        command = [sys.executable, "-c", "import config.settings as s; print(s.DEBUG)"]
        result = subprocess.run(command, env={**env, **extra}, cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip() or result.stderr[-2000:]

    assert debug() == "False"
    assert debug(DEBUG="1") == "True"


@pytest.mark.django_db
def test_the_platform_hosts_404_is_styled_too():
    from django.conf import settings
    from django.test import Client

    response = Client(HTTP_HOST=settings.TENANT_HOST_SUFFIX).get("/no/such/page/")
    assert response.status_code == 404
    assert SITE in page(response) and "Page not found" in page(response) and "URLconf" not in page(response)


def asgi_get(host: str, path: str, *, cookie: str = "") -> tuple[int, str]:
    """One GET through Django's ASGI handler, as uvicorn serves it (Django's AsyncClient cannot
    replace its "testserver" Host header)."""
    from asgiref.sync import async_to_sync
    from asgiref.testing import ApplicationCommunicator
    from django.core.handlers.asgi import ASGIHandler

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", host.encode()), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def run():
        communicator = ApplicationCommunicator(ASGIHandler(), scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(10)
        body = b""
        while True:
            message = await communicator.receive_output(10)
            body += message.get("body", b"")
            if not message.get("more_body"):
                return start["status"], body.decode()

    return async_to_sync(run)()


@pytest.mark.django_db
def test_under_asgi_the_404_still_carries_the_tenants_header(tenant_a, client_a, in_a):
    """Under ASGI (uvicorn) Django renders the 404 in another thread than the middleware's, whose
    database connection was never switched to the tenant: the page takes the tenant from the
    request."""
    host = tenant_a.get_primary_domain().domain
    assert asgi_get(host, "/accounts/login/")[0] == 200
    status, text = asgi_get(host, "/no/such/page/")
    assert status == 404
    assert f"<strong>{tenant_a.name}</strong>" in text and "Page not found" in text
    # signed in or not, the page reads nothing of the session (no account menu on error pages)
    from tests.factories import UserFactory

    client_a.force_login(UserFactory())
    cookie = f"sessionid={client_a.cookies['sessionid'].value}"
    status, text = asgi_get(host, "/no/such/page/", cookie=cookie)
    assert status == 404 and "Page not found" in text and "Sign out" not in text and "Sign in" not in text
