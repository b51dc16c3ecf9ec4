"""API paths never answer with an HTML error page, with DEBUG on or off (config.api_errors), and
bodies and parameters PostgreSQL or Python cannot take are refused at the door with a JSON 4xx
(config.api_parsers, config.api_errors.ApiErrorMiddleware). Each refusal writes nothing."""

from __future__ import annotations

import json

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import UnreadablePostError
from django.test import Client, override_settings

from billing.api.coupons import CouponsView
from billing.models import Organization
from config.api_parsers import MAX_DEPTH
from metering.models import LandingBatch
from tests.factories import APIKeyFactory, OrganizationFactory
from tests.helpers import bearer

DEBUG_ON_AND_OFF = pytest.mark.parametrize("debug", [False, True], ids=["DEBUG=False", "DEBUG=True"])


@pytest.fixture
def key(in_a):
    return APIKeyFactory(name="backend", scopes=["read", "write", "ingest"]).secret


@pytest.fixture
def client(tenant_a) -> Client:
    # Answers as a client sees them, 500s included (the default client re-raises the exception).
    return Client(HTTP_HOST=tenant_a.get_primary_domain().domain, raise_request_exception=False)


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return error


def post_json(client, path, body: str | bytes, key, content_type="application/json"):
    return client.post(path, body, content_type=content_type, **bearer(key))


def writes() -> tuple[int, int]:
    return Organization.objects.count(), LogEntry.objects.count()


# ---------------------------------------------------------------------------------------------
# Error pages become the JSON error shape


@pytest.mark.django_db
@DEBUG_ON_AND_OFF
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/nothing-here"),
        ("post", "/api/v1/organizations/"),  # a trailing slash matches no route
        ("delete", "/api/v2/organizations"),
        ("get", "/api/"),
        ("get", "/api/v1/organizations/bad%20id"),  # outside the lookup pattern
    ],
)
def test_a_path_no_route_matches_is_a_json_404(client, key, debug, method, path):
    with override_settings(DEBUG=debug):
        response = getattr(client, method)(path, **bearer(key))
    assert error_of(response, 404) == {"code": "not_found", "message": "No API resource at this path."}


@pytest.mark.django_db
@DEBUG_ON_AND_OFF
def test_an_unknown_host_on_an_api_path_is_a_json_404(debug, db):
    with override_settings(DEBUG=debug):
        response = Client(HTTP_HOST="nobody.localhost").get("/api/v1/organizations")
    assert error_of(response, 404)["code"] == "not_found"


@pytest.mark.django_db
@DEBUG_ON_AND_OFF
def test_a_server_error_on_an_api_path_is_json_with_the_request_id(client, key, debug, monkeypatch):
    def broken(self, request):
        raise RuntimeError("boom")

    monkeypatch.setattr(CouponsView, "get", broken)
    with override_settings(DEBUG=debug):
        response = client.get("/api/v1/coupons", HTTP_X_REQUEST_ID="req-42", **bearer(key))
    error = error_of(response, 500)
    assert error == {
        "code": "internal_error",
        "message": "The server failed to answer this request; quote request id req-42 to support.",
        "request_id": "req-42",
    }
    assert response["X-Request-ID"] == "req-42"
    assert b"boom" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("exception", "status", "code"),
    [
        (UnreadablePostError("connection reset"), 400, "malformed_request"),
        (SuspiciousOperation("too many fields"), 400, "malformed_request"),
        (RequestDataTooBig("too big"), 413, "payload_too_large"),
    ],
)
def test_request_errors_django_raises_while_reading_are_json(client, key, monkeypatch, exception, status, code):
    def reading(self, request):
        raise exception

    monkeypatch.setattr(CouponsView, "post", reading)
    assert (
        error_of(client.post("/api/v1/coupons", {}, content_type="application/json", **bearer(key)), status)["code"]
        == code
    )


@pytest.mark.django_db
def test_pages_outside_the_api_keep_their_html(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# ---------------------------------------------------------------------------------------------
# Bodies


@pytest.mark.django_db
def test_a_body_over_the_limit_is_a_413_json_and_writes_nothing(client, key, settings):
    before = writes()
    body = json.dumps(
        {"external_id": "big", "name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1), "currency": "EUR"}
    )
    error = error_of(post_json(client, "/api/v1/organizations", body, key), 413)
    assert error == {"code": "payload_too_large", "message": "The body exceeds 5242880 bytes."}
    assert writes() == before


@pytest.mark.django_db
def test_the_ingestion_endpoint_keeps_its_own_answers(client, key, settings):
    too_big = b'{"events": [' + b" " * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b"]}"
    assert error_of(post_json(client, "/api/v1/events", too_big, key), 413)["code"] == "payload_too_large"
    # Its query string is not read, so a NUL there is not refused (the ASGI lane does the same).
    event = json.dumps({"id": "e-1", "customer": "acme", "type": "api_call"})
    response = post_json(client, "/api/v1/events?trace=%00", event, key)
    assert response.status_code == 202, response.content
    assert LandingBatch.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        json.dumps({"external_id": "deep", "name": "D", "currency": "EUR", "metadata": {"a": [[[[[]]]]]}}).replace(
            "[[[[[]]]]]", "[" * MAX_DEPTH + "]" * MAX_DEPTH
        ),
    ],
    ids=["arrays 10,000 deep", "objects 10,000 deep", "metadata 33 deep"],
)
def test_deeply_nested_json_is_a_400(client, key, body):
    before = writes()
    error = error_of(post_json(client, "/api/v1/organizations", body, key), 400)
    assert error == {"code": "malformed_request", "message": "The JSON body is nested deeper than 32 levels."}
    assert writes() == before


@pytest.mark.django_db
def test_nesting_up_to_the_limit_is_accepted(client, key):
    metadata = {"a": "x"}
    for _ in range(MAX_DEPTH - 2):  # the body and `metadata` are two levels
        metadata = {"a": metadata}
    body = json.dumps({"external_id": "deep", "name": "D", "currency": "EUR", "metadata": metadata})
    assert post_json(client, "/api/v1/organizations", body, key).status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (
            '{"external_id": "n", "name": "N", "currency": "EUR", "metadata": {"note": "a\\u0000b"}}',
            "metadata.note",
            "null_characters_not_allowed",
        ),
        (
            '{"external_id": "n", "name": "N", "currency": "EUR", "metadata": {"a\\u0000": 1}}',
            "metadata",
            "null_characters_not_allowed",
        ),
        ('{"external_id": "n", "name": "\\ud800", "currency": "EUR"}', "name", "invalid_unicode"),
        (
            '{"external_id": "n", "name": "N", "currency": "EUR", "metadata": {"tags": ["ok", "\\udfff"]}}',
            "metadata.tags.1",
            "invalid_unicode",
        ),
        ('"\\u0000"', "non_field_errors", "null_characters_not_allowed"),
    ],
)
def test_strings_postgresql_cannot_store_are_a_validation_error_naming_the_field(client, key, body, field, code):
    before = writes()
    error = error_of(post_json(client, "/api/v1/organizations", body, key), 400)
    assert error["code"] == "validation_error"
    assert [item["code"] for item in error["fields"][field]] == [code]
    assert writes() == before


NUMBER_BODY = '{"external_id": "n", "name": "N", "currency": "EUR", "metadata": {"n": NUMBER}}'


@pytest.mark.django_db
@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_numbers_beyond_a_float_are_a_400(client, key, number):
    before = writes()
    body = NUMBER_BODY.replace("NUMBER", number)
    error = error_of(post_json(client, "/api/v1/organizations", body, key), 400)
    assert error == {"code": "malformed_request", "message": "The number at metadata.n is out of range."}
    assert writes() == before


@pytest.mark.django_db
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_stay_refused(client, key, literal):
    body = NUMBER_BODY.replace("NUMBER", literal)
    assert error_of(post_json(client, "/api/v1/organizations", body, key), 400)["code"] == "malformed_request"


# ---------------------------------------------------------------------------------------------
# Path and query parameters


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "problem"),
    [
        ("get", "/api/v1/coupons/a%00b", "The path must not contain NUL characters."),
        ("patch", "/api/v1/plans/a%00b", "The path must not contain NUL characters."),
        ("post", "/api/v1/organizations/ac%00me/credits", "The path must not contain NUL characters."),
        ("get", "/api/v1/customers/ac%00me/usage", "The path must not contain NUL characters."),
        ("get", "/api/v1/subscriptions?customer=a%00b", "Query parameters must not contain NUL characters."),
        ("get", "/api/v1/organizations?cursor=%00", "Query parameters must not contain NUL characters."),
        ("get", "/api/v1/invoices?x%00=1", "Query parameters must not contain NUL characters."),
    ],
)
def test_nul_characters_in_paths_and_queries_are_a_400(client, key, method, path, problem):
    OrganizationFactory(external_id="acme")
    before = writes()
    response = getattr(client, method)(path, **bearer(key))
    assert error_of(response, 400) == {"code": "invalid_parameter", "message": problem}
    assert writes() == before
