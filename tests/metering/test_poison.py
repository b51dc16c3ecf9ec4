"""Issue 9, item 1: one event must not stop ingestion. Every poison class is refused at the door in
both lanes (the Django view and the ASGI fast lane), and whatever reaches the landing table anyway
(written before a check existed, or by a bug) is moved to dead letters by the drainer, which
carries on and counts the events after it."""

from __future__ import annotations

import secrets
import signal
import time
from datetime import UTC, datetime
from io import StringIO

import msgspec
import psycopg
import pytest
from django.core.management import call_command
from django.db import InterfaceError, OperationalError, connection
from django_tenants.utils import schema_context
from hypothesis import given, settings
from hypothesis import strategies as st

from metering.ingest import _ordinary, _properties_decoder, properties_problem
from metering.models import Event, LandingBatch, LandingDeadLetter, Rollup
from metering.services.drain import drain_error_is_transient, drain_once
from metering.services.landing import landing_store
from metering.services.meter import meter_create
from tests.factories import APIKeyFactory
from tests.helpers import bearer
from tests.live import drainer
from tests.metering.test_lane import call

URL = "/api/v1/events"
EVENT = b'{"id": "bad", "customer": "acme", "type": "api_call", "properties": %s}'
CLOUD = b'{"specversion": "1.0", "id": "bad", "source": "/t", "type": "api_call", "subject": "acme", "data": %s}'
GOOD = b'{"id": "good", "customer": "acme", "type": "api_call", "properties": {"gb": 1}}'
GOOD_CLOUD = b'{"specversion": "1.0", "id": "good", "source": "/t", "type": "api_call", "subject": "acme"}'

# (name, the poisoned properties / CloudEvents data, what the door answers). "event": that event
# is rejected with the code and the others are accepted; (status, code): the body is refused.
# Limits: strings (keys and values) of at most 1,024 characters, at most 32 levels of nesting.
POISON = [
    ("invalid_utf8", b'{"note": "\xff\xfe"}', "invalid_properties"),
    ("overlong_utf8_nul", b'{"note": "\xc0\x80"}', "invalid_properties"),
    ("invalid_utf8_key", b'{"\xe2\x82": 1}', "invalid_properties"),
    ("lone_high_surrogate", b'{"note": "\\ud800"}', (400, "malformed_json")),
    ("lone_low_surrogate", b'{"note": "\\udc00"}', (400, "malformed_json")),
    ("reversed_surrogates", b'{"note": "\\udc00\\ud800"}', (400, "malformed_json")),
    ("nul_escape", b'{"note": "a\\u0000b"}', "invalid_properties"),
    ("nul_escape_in_key", b'{"a\\u0000": 1}', "invalid_properties"),
    ("nul_escape_deep", b'{"a": [{"b": "\\u0000"}]}', "invalid_properties"),
    ("raw_nul", b'{"note": "a\x00b"}', (400, "malformed_json")),
    ("number_overflow", b'{"n": 1e400}', "invalid_properties"),
    ("negative_overflow", b'{"n": -1.5E+999}', "invalid_properties"),
    ("integer_overflow", b'{"n": 1' + b"0" * 400 + b"}", "invalid_properties"),
    ("exponent_beyond_postgres", b'{"n": 0e-99999}', "invalid_properties"),
    ("nested_33_levels", b'{"a": ' + b"[" * 32 + b"]" * 32 + b"}", "invalid_properties"),
    ("nested_5000_levels", b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", (400, "invalid_body")),
    ("overlong_string", b'{"note": "' + b"x" * 1025 + b'"}', "invalid_properties"),
    ("overlong_key", b'{"' + b"k" * 1025 + b'": 1}', "invalid_properties"),
]
IDS = [name for name, _, _ in POISON]


def bodies(poison: bytes) -> list[tuple[str, bytes, int]]:
    """(content type, body, index of the poisoned event) for both body forms of each format."""
    return [
        ("application/json", b'{"events": [' + GOOD + b", " + EVENT % poison + b"]}", 1),
        ("application/json", EVENT % poison, 0),
        ("application/cloudevents-batch+json", b"[" + GOOD_CLOUD + b", " + CLOUD % poison + b"]", 1),
        ("application/cloudevents+json", CLOUD % poison, 0),
    ]


def expect(status: int, body: dict, *, index: int, expected) -> bool:
    """Check one answer; True when the good event of the body was accepted."""
    if isinstance(expected, tuple):
        assert (status, body["error"]["code"]) == expected, body
        assert body["error"]["message"]
        return False
    rejected = body["rejected"] if status == 202 else body["error"]["rejected"]
    assert [(r["index"], r["id"], r["code"]) for r in rejected] == [(index, "bad", expected)], body
    assert rejected[0]["message"]
    if index == 0:
        assert (status, body["error"]["code"]) == (422, "no_valid_events")
        return False
    assert (status, body["accepted"]) == (202, 1)
    return True


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "poison", "expected"), POISON, ids=IDS)
def test_each_poison_class_is_refused_by_the_django_view(client_a, in_a, name, poison, expected):
    key = APIKeyFactory(scopes=["ingest"]).secret
    accepted = 0
    for content_type, body, index in bodies(poison):
        response = client_a.post(URL, data=body, content_type=content_type, **bearer(key))
        accepted += expect(response.status_code, response.json(), index=index, expected=expected)
    assert LandingBatch.objects.count() == accepted
    drain_once(max_events=100)
    assert list(Event.objects.values_list("event_id", flat=True)) == (["good"] if accepted else [])
    assert not LandingDeadLetter.objects.exists()


@pytest.mark.django_db
def test_invalid_utf8_outside_properties_refuses_the_body(client_a, in_a):
    key = APIKeyFactory(scopes=["ingest"]).secret
    for body in (
        b'{"events": [' + GOOD + b', {"id": "b\xff", "customer": "acme", "type": "t"}]}',
        b'{"id": "good", "customer": "\xc0\x80", "type": "t"}',
        b'{"events": [' + GOOD + b'], "\xff": 1}',
        b'{"events": [{"id": 5, "customer": "acme", "type": "t", "properties": {"x": "\xff"}}]}',
    ):
        response = client_a.post(URL, data=body, content_type="application/json", **bearer(key))
        assert response.status_code in {400, 422}, response.content
        error = response.json()["error"]
        assert error["code"] in {"malformed_json", "no_valid_events"}, error
    assert LandingBatch.objects.count() == 0


@pytest.mark.usefixtures("django_db_setup")
def test_each_poison_class_is_refused_by_the_fast_lane(committed_tenant, django_db_blocker):
    tenant, key = committed_tenant
    host = tenant.get_primary_domain().domain
    accepted = 0
    for _, poison, expected in POISON:
        for content_type, body, index in bodies(poison):
            status, answer, _ = call(host, body=body, token=key, content_type=content_type)
            accepted += expect(status, answer, index=index, expected=expected)
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        assert sum(LandingBatch.objects.values_list("event_count", flat=True)) == accepted > 0
    connection.set_schema_to_public()


numbers = st.one_of(
    st.integers(min_value=-(10**320), max_value=10**320),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: msgspec.Raw(str(d).encode())),
    st.sampled_from([msgspec.Raw(b"1e400"), msgspec.Raw(b"-2E+308"), msgspec.Raw(b"0e-1001"), msgspec.Raw(b"1.5e3")]),
)
texts = st.one_of(st.text(max_size=20), st.text(alphabet="\x00ab", max_size=5), st.just("x" * 1025))
properties = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(value=st.dictionaries(texts, properties, max_size=4))
def test_the_byte_level_shortcut_never_skips_a_problem(value):
    """_ordinary lets most events skip the full walk; whenever it does, the walk finds nothing."""
    raw = msgspec.json.encode(value)
    if _ordinary(raw):
        assert properties_problem(_properties_decoder.decode(raw)) is None, raw


def _django(error: Exception) -> Exception:
    wrapped = OperationalError(str(error))
    wrapped.__cause__ = error
    return wrapped


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (_django(psycopg.OperationalError("connection lost")), True),
        (_django(psycopg.errors.lookup("40P01")("deadlock detected")), True),
        (_django(psycopg.errors.lookup("57P01")("terminating connection due to administrator command")), True),
        (_django(psycopg.errors.lookup("53100")("could not extend file: No space left on device")), True),
        (InterfaceError("connection already closed"), True),
        (_django(psycopg.errors.lookup("54000")("index row size 3048 exceeds btree version 4 maximum")), False),
        (psycopg.errors.lookup("22P05")("unsupported Unicode escape sequence"), False),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), False),
        (ValueError("year 10000 is out of range"), False),
        (RecursionError("maximum recursion depth exceeded"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_only_transient_database_errors_are_retried_as_they_are(error, transient):
    """Anything else is blamed on the batches: retrying the same rows would fail the same way
    (a 54000 was once retried forever as if the database were down)."""
    assert drain_error_is_transient(error) is transient


# --- what the door did not stop -------------------------------------------------------------------

TS = b'"2026-11-20T10:30:00Z"'


def landed_row(*, id=b'"p"', customer=b'"acme"', type_=b'"m"', ts=TS, properties=b"{}") -> bytes:
    """A landing payload of one event, byte for byte (encode_landing's shape)."""
    return b"[[" + b", ".join([id, customer, type_, ts, properties]) + b"]]"


POISON_LANDED = [
    ("invalid_utf8_properties", landed_row(properties=b'{"x": "\xff"}')),  # UnicodeDecodeError
    ("invalid_utf8_id", landed_row(id=b'"p\xff"')),  # UnicodeDecodeError inside msgspec
    ("lone_surrogate", landed_row(properties=b'{"x": "\\ud800"}')),  # msgspec.DecodeError
    ("nul", landed_row(properties=b'{"x": "\\u0000"}')),  # DataError (jsonb)
    ("numeric_overflow", landed_row(properties=b'{"x": 1e200000}')),  # DataError (numeric)
    ("nested_5000_levels", landed_row(properties=b"[" * 5000 + b"]" * 5000)),  # RecursionError
    ("year_9999", landed_row(ts=b'"9999-12-31T23:00:00Z"')),  # ValueError (partition bounds)
    ("customer_too_long", landed_row(customer=b'"' + b"c" * 300 + b'"')),  # DataError (varchar)
    ("not_json", b"\x00\x01 garbage"),  # msgspec.DecodeError
    ("wrong_shape", b'{"events": []}'),  # msgspec.ValidationError
]


def land_good(event_id: str) -> int:
    event = (event_id, "acme", "m", datetime(2026, 11, 20, 10, 30, tzinfo=UTC), msgspec.Raw(b'{"v": 2}'))
    return landing_store(events=[event], received_at=datetime.now(UTC))


def land_raw(payload: bytes) -> int:
    return LandingBatch.objects.create(received_at=datetime.now(UTC), event_count=1, payload=payload).pk


@pytest.mark.django_db
def test_the_drainer_quarantines_every_poisoned_batch_and_counts_the_rest(in_a):
    meter_create(actor=None, code="n", name="N", event_type="m", aggregation="count")
    good = [land_good("ok-0")]
    poisoned = {}
    for i, (name, payload) in enumerate(POISON_LANDED):
        poisoned[land_raw(payload)] = name
        good.append(land_good(f"ok-{i + 1}"))
    call_command("metering_drain", "--once", stdout=StringIO())
    connection.set_tenant(in_a)  # the command visited every tenant
    assert sorted(Event.objects.values_list("event_id", flat=True)) == sorted(f"ok-{i}" for i in range(len(good)))
    assert sum(Rollup.objects.values_list("event_count", flat=True)) == len(good)
    assert not LandingBatch.objects.exists()
    dead = {d.batch_id: d for d in LandingDeadLetter.objects.all()}
    assert set(dead) == set(poisoned)
    for batch_id, letter in dead.items():
        assert letter.error, poisoned[batch_id]
        assert bytes(letter.payload) == dict(POISON_LANDED)[poisoned[batch_id]]


@pytest.mark.django_db
def test_a_drain_of_many_batches_narrows_down_to_the_poisoned_one(in_a):
    meter_create(actor=None, code="n", name="N", event_type="m", aggregation="count")
    for i in range(40):
        land_good(f"ok-{i}")
    bad = land_raw(landed_row(properties=b'{"x": "\xff"}'))
    for i in range(40, 60):
        land_good(f"ok-{i}")
    call_command("metering_drain", "--once", "--batch-events", "1000", stdout=StringIO())
    connection.set_tenant(in_a)
    assert Event.objects.count() == 60
    assert list(LandingDeadLetter.objects.values_list("batch_id", flat=True)) == [bad]
    assert not LandingBatch.objects.exists()


@pytest.mark.django_db
def test_long_group_values_are_stored_and_rolled_up(client_a, in_a):
    """Three group values of 1,000 characters (allowed at the door) once made a rollup key longer
    than a btree index entry may be: PostgreSQL refused the drain (54000) and the drainer retried
    it forever as if the database were down."""
    meter_create(actor=None, code="g", name="G", event_type="m", aggregation="count", group_by=["a", "b", "c"])
    key = APIKeyFactory(scopes=["ingest"]).secret
    values = [secrets.token_hex(500) for _ in range(3)]
    event = {"id": "long", "customer": "acme", "type": "m", "properties": dict(zip("abc", values, strict=True))}
    response = client_a.post(URL, data=msgspec.json.encode(event), content_type="application/json", **bearer(key))
    assert response.status_code == 202, response.content
    drain_once(max_events=10)
    rollup = Rollup.objects.get()
    assert (rollup.event_count, msgspec.json.decode(rollup.group_key)) == (1, values)


@pytest.mark.slow
@pytest.mark.usefixtures("django_db_setup")
def test_the_running_drainer_survives_poison_and_counts_what_follows(committed_tenant, django_db_blocker):
    """The long-running drainer (as honcho runs it), not --once: it quarantines the poisoned
    batches, stays up, and drains a good event landed after them."""
    tenant, _ = committed_tenant

    def in_tenant(fn):
        with django_db_blocker.unblock(), schema_context(tenant.schema_name):
            try:
                return fn()
            finally:
                connection.set_schema_to_public()

    def wait_for(events: int) -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if in_tenant(lambda: Event.objects.count()) == events and not in_tenant(LandingBatch.objects.exists):
                return True
            time.sleep(0.2)
        return False

    in_tenant(lambda: meter_create(actor=None, code="n", name="N", event_type="m", aggregation="count"))
    proc = drainer()
    try:
        in_tenant(lambda: [land_good("before"), *[land_raw(payload) for _, payload in POISON_LANDED]])
        assert wait_for(1)
        assert proc.poll() is None
        in_tenant(lambda: land_good("after"))
        assert wait_for(2)
        assert proc.poll() is None
        assert in_tenant(lambda: LandingDeadLetter.objects.count()) == len(POISON_LANDED)
        assert in_tenant(lambda: sum(Rollup.objects.values_list("event_count", flat=True))) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
