import pytest
from django.test import Client


@pytest.mark.django_db
def test_public_host_serves_the_landing_page_and_unknown_hosts_get_404(public_schema):
    assert Client(HTTP_HOST="localhost").get("/").status_code == 200
    assert Client(HTTP_HOST="nobody.localhost").get("/").status_code == 404
    assert Client(HTTP_HOST="nobody.localhost").get("/api/v1/organizations").status_code == 404


@pytest.mark.django_db
def test_health_endpoints_answer_on_every_host(client_a):
    for client in (client_a, Client(HTTP_HOST="localhost"), Client(HTTP_HOST="nobody.localhost")):
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.content
        assert ready.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_redis_down(client_a, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client_a.get("/readyz")
    assert response.status_code == 503
    assert set(response.json()["failures"]) == {"redis"}


@pytest.mark.django_db
def test_metrics_need_the_token_when_one_is_configured(client_a, settings):
    # The test client's REMOTE_ADDR is 127.0.0.1, so without a token loopback is allowed.
    settings.METRICS_TOKEN = ""
    assert client_a.get("/metrics").status_code == 200
    assert Client(HTTP_HOST="localhost", REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 403
    settings.METRICS_TOKEN = "s3cret-metrics"
    assert client_a.get("/metrics").status_code == 403
    ok = client_a.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics")
    assert ok.status_code == 200
    assert b"django_http_requests_total_by_method_total" in ok.content


@pytest.mark.django_db
def test_responses_carry_a_request_id(client_a):
    # A caller's id is kept (to follow a request across systems); otherwise one is made.
    assert client_a.get("/accounts/login/", HTTP_X_REQUEST_ID="req-123")["X-Request-ID"] == "req-123"
    made = client_a.get("/accounts/login/")["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0
