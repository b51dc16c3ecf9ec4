"""POST /api/v1/events through the test client: every rejection code, durability of what is
accepted, and nothing stored for what is refused."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from metering.models import Event, LandingBatch, Meter, Rollup
from metering.services.drain import drain_once
from metering.services.meter import meter_create
from tests.factories import APIKeyFactory
from tests.helpers import bearer

URL = "/api/v1/events"


@pytest.fixture
def ingest_key(in_a):
    return APIKeyFactory(scopes=["ingest"]).secret


def post(client, key, body, content_type="application/json"):
    data = body if isinstance(body, bytes | str) else msgspec.json.encode(body)
    return client.post(URL, data=data, content_type=content_type, **bearer(key))


def ev(i, **over):
    base = {"id": f"e-{i}", "customer": "acme", "type": "api_call", "properties": {"bytes": 10 * i}}
    base.update(over)
    return base


def landed_events() -> int:
    return sum(b.event_count for b in LandingBatch.objects.all())


@pytest.mark.django_db
def test_batch_is_accepted_landed_then_drained_into_events_and_rollups(client_a, ingest_key):
    meter_create(
        actor=None, code="bytes", name="Bytes", event_type="api_call", aggregation="sum", value_property="bytes"
    )
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    body = {"events": [ev(i, timestamp=ts.isoformat()) for i in range(1, 6)]}
    response = post(client_a, ingest_key, body)
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 5, "rejected": []}
    assert landed_events() == 5 and Event.objects.count() == 0

    result = drain_once(max_events=1000)
    assert (result.batches, result.inserted, result.duplicates) == (1, 5, 0)
    assert LandingBatch.objects.count() == 0
    assert sorted(Event.objects.values_list("event_id", flat=True)) == [f"e-{i}" for i in range(1, 6)]
    rollup = Rollup.objects.get(meter=Meter.objects.get(code="bytes"))
    assert (rollup.customer, rollup.hour, rollup.event_count) == ("acme", ts.replace(minute=0, second=0), 5)
    assert (
        rollup.value_sum == Decimal("150") and rollup.value_min == Decimal("10") and rollup.value_max == Decimal("50")
    )


@pytest.mark.django_db
def test_single_event_and_default_timestamp(client_a, ingest_key):
    before = datetime.now(UTC)
    response = post(client_a, ingest_key, {"id": "one", "customer": "acme", "type": "login"})
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "rejected": []}
    drain_once(max_events=10)
    event = Event.objects.get()
    assert before <= event.timestamp <= datetime.now(UTC)
    assert event.properties == {}


@pytest.mark.django_db
def test_each_rejection_code_and_the_good_events_still_land(client_a, ingest_key):
    now = datetime.now(UTC)
    events = [
        ev(0),
        {"customer": "acme", "type": "t"},  # missing id
        ev(2, customer=7),
        ev(3, type=""),
        ev(4, id="x" * 256),
        ev(5, timestamp="yesterday"),
        ev(6, timestamp="2026-11-24T10:00:00"),  # no offset
        ev(7, timestamp=(now - timedelta(days=36)).isoformat()),
        ev(8, timestamp=(now + timedelta(minutes=6)).isoformat()),
        ev(9, properties=[1, 2]),
        ev(10, properties={"blob": "x" * 17000}),
        "not an object",
        ev(12, id=""),
        ev(13),
    ]
    response = post(client_a, ingest_key, {"events": events})
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (1, "missing_field"),
        (2, "invalid_customer"),
        (3, "invalid_type"),
        (4, "invalid_id"),
        (5, "invalid_timestamp"),
        (6, "invalid_timestamp"),
        (7, "timestamp_out_of_window"),
        (8, "timestamp_out_of_window"),
        (9, "invalid_properties"),
        (10, "properties_too_large"),
        (11, "invalid_event"),
        (12, "invalid_id"),
    ]
    assert body["rejected"][3]["id"] == "x" * 256 and body["rejected"][0]["id"] is None
    assert all(r["message"] for r in body["rejected"])
    drain_once(max_events=100)
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["e-0", "e-13"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed_json"),
        (b"0\x00", "application/cloudevents+json", 400, "malformed_json"),  # found by hypothesis
        (b"[{}] x", "application/cloudevents-batch+json", 400, "malformed_json"),
        (b"", "application/json", 400, "empty_body"),
        (b"[1, 2]", "application/json", 400, "invalid_body"),
        (b'{"events": 3}', "application/json", 400, "invalid_body"),
        (b'{"events": []}', "application/json", 400, "empty_batch"),
        (b"id=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"events": [{"id": "a"}]}', "application/json", 422, "no_valid_events"),
    ],
)
def test_unusable_bodies_are_refused_and_store_nothing(client_a, ingest_key, body, content_type, status, code):
    response = post(client_a, ingest_key, body, content_type)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert LandingBatch.objects.count() == 0


@pytest.mark.django_db
def test_size_limits(client_a, ingest_key):
    too_many = {"events": [ev(i) for i in range(10_001)]}
    response = post(client_a, ingest_key, too_many)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_many_events"
    too_big = (
        b'{"events": ['
        + b",".join([msgspec.json.encode(ev(i, properties={"p": "y" * 600})) for i in range(9000)])
        + b"]}"
    )
    assert len(too_big) > 5 * 1024 * 1024
    response = post(client_a, ingest_key, too_big)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert LandingBatch.objects.count() == 0


@pytest.mark.django_db
def test_credentials_and_scopes(client_a, in_a):
    reader = APIKeyFactory(scopes=["read", "write"]).secret
    assert post(client_a, reader, ev(1)).json()["error"]["code"] == "permission_denied"
    assert client_a.post(URL, data=b"{}", content_type="application/json").status_code == 401
    assert post(client_a, "bk_nope_nope", ev(1)).status_code == 401
    assert client_a.get(URL, **bearer(reader)).status_code == 405
    assert LandingBatch.objects.count() == 0


@pytest.mark.django_db
def test_cloudevents_single_and_batch(client_a, ingest_key):
    now = datetime.now(UTC).isoformat()
    one = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/svc",
        "type": "api_call",
        "subject": "acme",
        "time": now,
        "data": {"bytes": 5},
    }
    response = post(client_a, ingest_key, one, "application/cloudevents+json")
    assert response.status_code == 202 and response.json()["accepted"] == 1
    batch = [dict(one, id="ce-2"), dict(one, id="ce-3", specversion="0.3"), {"id": "ce-4", "type": "x"}]
    response = post(client_a, ingest_key, batch, "application/cloudevents-batch+json")
    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert [(r["index"], r["code"]) for r in response.json()["rejected"]] == [
        (1, "invalid_specversion"),
        (2, "missing_field"),
    ]
    drain_once(max_events=100)
    stored = {e.event_id: (e.customer, e.properties) for e in Event.objects.all()}
    assert stored == {"ce-1": ("acme", {"bytes": 5}), "ce-2": ("acme", {"bytes": 5})}


@pytest.mark.django_db
def test_duplicates_count_once_whatever_the_repeat_carries(client_a, ingest_key):
    meter_create(actor=None, code="calls", name="Calls", event_type="api_call", aggregation="count")
    ts = datetime.now(UTC) - timedelta(minutes=5)
    post(client_a, ingest_key, {"events": [ev(1, timestamp=ts.isoformat()), ev(1, properties={"bytes": 999})]})
    post(client_a, ingest_key, {"events": [ev(1, timestamp=(ts - timedelta(days=2)).isoformat()), ev(2)]})
    first = drain_once(max_events=3)  # only the first batch fits
    second = drain_once(max_events=100)
    assert (first.inserted, first.duplicates) == (1, 1)
    assert (second.inserted, second.duplicates) == (1, 1)
    post(client_a, ingest_key, ev(2, customer="someone-else"))
    third = drain_once(max_events=100)
    assert (third.inserted, third.duplicates) == (0, 1)
    assert Event.objects.get(event_id="e-1").properties == {"bytes": 10}
    assert sum(Rollup.objects.values_list("event_count", flat=True)) == 2


@pytest.mark.django_db
def test_rate_limit_gives_429_with_retry_after(client_a, ingest_key, settings):
    settings.INGEST_EVENTS_PER_SECOND_PER_KEY = 5  # burst 10
    assert post(client_a, ingest_key, {"events": [ev(i) for i in range(8)]}).status_code == 202
    response = post(client_a, ingest_key, {"events": [ev(i) for i in range(100, 108)]})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert landed_events() == 8


@pytest.mark.django_db
def test_redis_down_fails_open(client_a, ingest_key, settings):
    import metering.ratelimit as rl

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # a client of its own (metering.redisconn is per URL)
    before = rl.RATE_LIMIT_FAILOPEN._value.get()
    assert post(client_a, ingest_key, ev(1)).status_code == 202
    assert rl.RATE_LIMIT_FAILOPEN._value.get() == before + 1
