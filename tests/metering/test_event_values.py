"""Issue 9, item 6(a): the values meters take are bounded (at most 15 digits before the point and
12 after) and not negative unless the meter opts in; ingestion refuses the rest per event with
`invalid_value`, naming the property and the meter, and stores nothing of them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest
from django.db import connection
from django_tenants.utils import schema_context

from metering.models import Event, LandingBatch, Meter, Rollup
from metering.selectors.usage import usage_get
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from metering.services.meter import meter_create
from tests.factories import APIKeyFactory
from tests.helpers import bearer
from tests.metering.test_lane import call

URL = "/api/v1/events"
RAW = msgspec.Raw


@pytest.fixture
def ingest_key(in_a):
    return APIKeyFactory(scopes=["ingest"]).secret


def body(*properties) -> bytes:
    events = [
        {"id": f"v-{i}", "customer": "acme", "type": "api_call", "properties": p} for i, p in enumerate(properties)
    ]
    return msgspec.json.encode({"events": events})


def post(client, key, data: bytes):
    return client.post(URL, data=data, content_type="application/json", **bearer(key))


def sum_meter(**extra) -> Meter:
    return meter_create(
        actor=None, code="gb", name="GB", event_type="api_call", aggregation="sum", value_property="gb", **extra
    )


# (value as JSON, what the message says)
REFUSED = [
    (RAW(b"-100000"), "must not be negative"),
    ("1e60", "must be a JSON number or a decimal string"),
    (RAW(b"1e400"), "is out of range"),
    (RAW(b"1e60"), "is out of range"),
    (RAW(b"1000000000000000"), "is out of range"),  # 10^15
    ("1000000000000000", "is out of range"),
    (RAW(b"0.0000000000001"), "is out of range"),  # 13 decimals
    ("1.0000000000000", "is out of range"),
    ("-1", "must not be negative"),
    (RAW(b"-0.5"), "must not be negative"),
    (True, "must be a JSON number"),
    ("abc", "must be a JSON number or a decimal string"),
    (" 5", "must be a JSON number or a decimal string"),
    ({"amount": 1}, "must be a JSON number"),
    ([1], "must be a JSON number"),
]


@pytest.mark.django_db
def test_values_a_sum_meter_cannot_count_are_refused_and_nothing_is_stored(client_a, ingest_key):
    sum_meter()
    response = post(client_a, ingest_key, body(*({"gb": value} for value, _ in REFUSED)))
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "no_valid_events"
    rejected = error["rejected"]
    assert [(r["index"], r["code"]) for r in rejected] == [(i, "invalid_value") for i in range(len(REFUSED))]
    for rejection, (value, says) in zip(rejected, REFUSED, strict=True):
        assert rejection["message"].startswith("properties.gb "), rejection
        assert says in rejection["message"] and "(meter gb)" in rejection["message"], (value, rejection)
    assert LandingBatch.objects.count() == 0
    drain_once(max_events=100)
    assert not Event.objects.exists() and not Rollup.objects.exists()


@pytest.mark.django_db
def test_values_within_the_range_are_counted_exactly(client_a, ingest_key):
    meter = sum_meter()
    accepted = [
        {"gb": 0},
        {"gb": 5},
        {"gb": "12.5"},
        {"gb": RAW(b"999999999999999.999999999999")},
        {"gb": "0.000000000001"},
        {"gb": RAW(b"1.5e2")},  # 150: exponents are fine on JSON numbers
        {"gb": RAW(b"-0.0")},  # zero, not negative
        {"gb": None},  # no value: counted by count meters, not summed
        {},
    ]
    response = post(client_a, ingest_key, body(*accepted))
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": len(accepted), "rejected": []}
    drain_once(max_events=100)
    rollup = Rollup.objects.get(meter=meter)
    assert rollup.event_count == len(accepted)
    assert rollup.value_sum == Decimal("1000000000000167.5")


@pytest.mark.django_db
def test_a_meter_that_allows_negative_values_counts_them(client_a, ingest_key):
    meter = sum_meter(allow_negative=True)
    response = post(client_a, ingest_key, body({"gb": RAW(b"-100000")}, {"gb": "-2.5"}, {"gb": RAW(b"-1e15")}))
    assert response.status_code == 202, response.content
    assert [(r["index"], r["code"]) for r in response.json()["rejected"]] == [(2, "invalid_value")]
    drain_once(max_events=100)
    assert Rollup.objects.get(meter=meter).value_sum == Decimal("-100002.5")


@pytest.mark.django_db
def test_only_the_meters_that_match_an_event_judge_its_value(client_a, ingest_key):
    """Filters decide which meters count an event, as in SQL: numbers equal by value, a boolean
    never equals a number."""
    meter_create(
        actor=None,
        code="charges",
        name="Charges",
        event_type="api_call",
        aggregation="sum",
        value_property="amount",
        filters=[{"property": "kind", "operator": "eq", "value": 1}],
    )
    refunds = meter_create(
        actor=None,
        code="refunds",
        name="Refunds",
        event_type="api_call",
        aggregation="sum",
        value_property="amount",
        filters=[{"property": "kind", "operator": "in", "values": ["refund", 2.5]}],
        allow_negative=True,
    )
    events = [
        {"kind": RAW(b"1.0"), "amount": -5},  # charges (1.0 equals 1): refused
        {"kind": "refund", "amount": -5},  # refunds
        {"kind": 2.5, "amount": -1},  # refunds
        {"kind": True, "amount": -5},  # neither meter: true is no 1
        {"amount": -5},  # neither
        {"kind": "1", "amount": -5},  # neither: a string is no number
    ]
    response = post(client_a, ingest_key, body(*events))
    assert response.status_code == 202, response.content
    rejected = response.json()["rejected"]
    assert [(r["index"], r["code"]) for r in rejected] == [(0, "invalid_value")]
    assert "(meter charges)" in rejected[0]["message"]
    drain_once(max_events=100)
    assert Rollup.objects.get(meter=refunds).value_sum == Decimal("-6")


@pytest.mark.django_db
def test_a_new_meter_judges_the_next_request_at_once(client_a, ingest_key):
    assert post(client_a, ingest_key, body({"gb": -1})).status_code == 202
    sum_meter()
    response = post(client_a, ingest_key, body({"gb": -1}))
    assert response.status_code == 422 and response.json()["error"]["rejected"][0]["code"] == "invalid_value"
    writer = APIKeyFactory(scopes=["read", "write"]).secret
    patched = client_a.patch(
        "/api/v1/meters/gb", {"allow_negative": True}, content_type="application/json", **bearer(writer)
    )
    assert patched.status_code == 200 and patched.json()["allow_negative"] is True
    assert post(client_a, ingest_key, body({"gb": -1})).status_code == 202


@pytest.mark.django_db
def test_values_that_reach_storage_anyway_count_no_value(in_a):
    """Landed before the meter existed or within another process's rules cache: the drainer and
    every usage read apply the same bounds in SQL, so such a value never reaches a sum."""
    meter = sum_meter()
    when = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    raw = [b'{"gb": -100000}', b'{"gb": "1e60"}', b'{"gb": 1e400}', b'{"gb": 1e15}', b'{"gb": 2}']
    events = [(f"s-{i}", "acme", "api_call", when, RAW(p)) for i, p in enumerate(raw)]
    landing_store(events=events, received_at=datetime.now(UTC))
    drain_once(max_events=100)
    rollup = Rollup.objects.get(meter=meter)
    assert (rollup.event_count, rollup.value_sum, rollup.value_min, rollup.value_max) == (5, 2, 2, 2)
    # Raw events (the partial hour at the range's start) read the same way.
    usage = usage_get(meter=meter, customer="acme", start=when.replace(minute=10), end=when.replace(minute=50))
    assert usage.value == Decimal(2)


@pytest.mark.django_db
def test_the_meters_api_shows_and_changes_allow_negative(client_a, in_a, django_capture_on_commit_callbacks):
    key = APIKeyFactory(scopes=["read", "write"]).secret
    created = client_a.post(
        "/api/v1/meters",
        {"code": "credits", "name": "Credits", "event_type": "c", "aggregation": "sum", "value_property": "v"},
        content_type="application/json",
        **bearer(key),
    )
    assert created.status_code == 201, created.content
    assert created.json()["allow_negative"] is False
    with django_capture_on_commit_callbacks() as callbacks:
        patched = client_a.patch(
            "/api/v1/meters/credits", {"allow_negative": True}, content_type="application/json", **bearer(key)
        )
    assert patched.status_code == 200 and patched.json()["allow_negative"] is True
    assert Meter.objects.get(code="credits").allow_negative is True
    assert len(callbacks) == 2  # the rollup rebuild (what counts changed) and the rules cache


@pytest.mark.usefixtures("django_db_setup")
def test_the_fast_lane_refuses_the_same_values(committed_tenant, django_db_blocker):
    tenant, key = committed_tenant
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        sum_meter()
    connection.set_schema_to_public()
    host = tenant.get_primary_domain().domain
    status, answer, _ = call(host, body=body({"gb": RAW(b"-100000")}, {"gb": "1e60"}, {"gb": RAW(b"1e400")}), token=key)
    assert status == 422
    assert [(r["index"], r["code"]) for r in answer["error"]["rejected"]] == [
        (0, "invalid_value"),
        (1, "invalid_value"),
        (2, "invalid_value"),
    ]
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        assert not LandingBatch.objects.exists()
    connection.set_schema_to_public()
