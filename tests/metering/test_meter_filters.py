"""Issue 9: "meter filters with 100,000 values" were accepted. A meter has at most 20 filters, an
`in` filter at most 100 values, a string value at most 255 characters; values are JSON scalars
PostgreSQL can compare (no NUL, finite numbers). Refusals are 400 with a stable code and change
nothing."""

from __future__ import annotations

import pytest

from core.errors import DomainError
from metering.models import Meter
from metering.services.meter import meter_create
from tests.helpers import bearer

URL = "/api/v1/meters"


def meter_body(filters) -> dict:
    return {"code": "calls", "name": "Calls", "event_type": "api_call", "aggregation": "count", "filters": filters}


def in_filter(values, prop="region") -> dict:
    return {"property": prop, "operator": "in", "values": values}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filters", "code", "says"),
    [
        ([in_filter([f"r{i}" for i in range(100_000)])], "too_many_filter_values", "at most 100 values"),
        ([in_filter(list(range(101)))], "too_many_filter_values", "at most 100 values"),
        ([in_filter(["eu"], prop=f"p{i}") for i in range(21)], "too_many_filters", "at most 20 filters"),
        ([{"property": "region", "operator": "eq", "value": "x" * 256}], "filter_value_too_long", "255"),
        ([in_filter(["eu", "y" * 256])], "filter_value_too_long", "filters[0].values[1]"),
    ],
    ids=["100000_values", "101_values", "21_filters", "long_eq", "long_in"],
)
def test_oversized_filters_are_refused_and_nothing_is_created(client_a, writer, filters, code, says):
    response = client_a.post(URL, meter_body(filters), content_type="application/json", **bearer(writer))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code and says in error["message"], error
    assert not Meter.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ([{"property": "region", "operator": "eq", "value": "e\u0000u"}], "filters.0.value"),
        ([in_filter(["eu", "\u0000"])], "filters.0.values.1"),
    ],
    ids=["nul_eq", "nul_in"],
)
def test_nul_in_filter_values_is_refused_at_the_door_and_by_the_service(client_a, writer, filters, field):
    # The API's JSON parser refuses NUL anywhere in a body (config.api_parsers), naming the field;
    # the service refuses it too for callers that do not come through the API.
    response = client_a.post(URL, meter_body(filters), content_type="application/json", **bearer(writer))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and list(error["fields"]) == [field], error
    with pytest.raises(DomainError) as refused:
        meter_create(actor=None, **meter_body(filters))
    assert refused.value.code == "invalid_filters" and "NUL" in refused.value.message
    assert not Meter.objects.exists()


@pytest.mark.django_db
def test_non_finite_filter_numbers_are_refused(client_a, writer):
    # Python's json reads 1e400 as inf, which would be written to SQL as null. The API's JSON
    # parser refuses numbers beyond a float before the service (which refuses them too:
    # metering.meters._check_filter_value).
    body = b'{"code": "calls", "name": "Calls", "event_type": "api_call", "aggregation": "count", '
    body += b'"filters": [{"property": "n", "operator": "eq", "value": 1e400}]}'
    response = client_a.post(URL, body, content_type="application/json", **bearer(writer))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "malformed_request"
    with pytest.raises(DomainError) as refused:
        meter_create(
            actor=None,
            code="calls",
            name="Calls",
            event_type="api_call",
            aggregation="count",
            filters=[{"property": "n", "operator": "in", "values": [1, float("inf")]}],
        )
    assert refused.value.code == "invalid_filters" and "filters[0].values[1]" in refused.value.message
    assert not Meter.objects.exists()


@pytest.mark.django_db
def test_filters_at_the_limits_are_accepted_and_a_patch_beyond_them_changes_nothing(client_a, writer):
    at_limit = [in_filter([f"r{i}" for i in range(100)])] + [in_filter(["x" * 255], prop=f"p{i}") for i in range(19)]
    created = client_a.post(URL, meter_body(at_limit), content_type="application/json", **bearer(writer))
    assert created.status_code == 201, created.content
    assert Meter.objects.get().filters == at_limit
    patched = client_a.patch(
        f"{URL}/calls", {"filters": [in_filter(list(range(101)))]}, content_type="application/json", **bearer(writer)
    )
    assert patched.status_code == 400 and patched.json()["error"]["code"] == "too_many_filter_values"
    assert Meter.objects.get().filters == at_limit
