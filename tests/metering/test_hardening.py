"""Inputs that once could break the store: SQL in meter paths, NUL bytes, numbers beyond a fixed
precision, group texts that Python and SQL print differently, and a batch the database refuses."""

from datetime import UTC, datetime
from decimal import Decimal, localcontext
from io import StringIO

import msgspec
import pytest
from django.core.management import call_command
from django.db import connection

from core.errors import DomainError
from metering.models import Event, LandingBatch, LandingDeadLetter, Meter, Rollup
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from metering.services.meter import meter_create
from metering.services.rollups import rollups_check
from tests.factories import APIKeyFactory
from tests.helpers import bearer

TS = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


def land(*events):
    landing_store(events=[(i, "acme", "m", TS, msgspec.Raw(p)) for i, p in events], received_at=datetime.now(UTC))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["a}' OR 1=1; DROP TABLE accounts_user; --", "a'b", "a,b", "", "a..b", "x" * 65, ".".join("a" * 9)],
)
def test_meter_paths_that_could_reach_sql_are_refused(in_a, client_a, path):
    key = APIKeyFactory(scopes=["read", "write"]).secret
    body = {
        "code": "evil",
        "name": "Evil",
        "event_type": "m",
        "aggregation": "count",
        "filters": [{"property": path, "operator": "eq", "value": 1}],
    }
    response = client_a.post("/api/v1/meters", body, content_type="application/json", **bearer(key))
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"invalid_property_path", "invalid_filters"}
    with pytest.raises(DomainError):
        meter_create(
            actor=None,
            code="evil2",
            name="E",
            event_type="m",
            aggregation="count",
            group_by=[path] if path else ["a b"],
        )
    assert not Meter.objects.exists()


@pytest.mark.django_db
def test_nul_bytes_are_rejected_at_ingestion(in_a, client_a):
    key = APIKeyFactory(scopes=["ingest"]).secret
    events = [
        {"id": "a\u0000", "customer": "c", "type": "t"},
        {"id": "b", "customer": "c\u0000", "type": "t"},
        {"id": "c", "customer": "c", "type": "t", "properties": {"x": "a\u0000b"}},
        {"id": "d", "customer": "c", "type": "t"},
    ]
    response = client_a.post(
        "/api/v1/events", msgspec.json.encode({"events": events}), content_type="application/json", **bearer(key)
    )
    assert response.status_code == 202
    assert [(r["index"], r["code"]) for r in response.json()["rejected"]] == [
        (0, "invalid_id"),
        (1, "invalid_customer"),
        (2, "invalid_properties"),
    ]
    drain_once(max_events=10)
    assert list(Event.objects.values_list("event_id", flat=True)) == ["d"]


@pytest.mark.django_db
def test_values_at_the_limits_stay_exact_and_beyond_them_count_no_value(in_a):
    """Meter values have at most 15 digits before the point and 12 after (metering.meters); what
    the door did not refuse (landed directly here) and lies beyond counts as no value."""
    meter_create(
        actor=None, code="v", name="V", event_type="m", aggregation="sum", value_property="v", allow_negative=True
    )
    land(
        ("1", b'{"v": 999999999999999.999999999999}'),
        ("2", b'{"v": "0.000000000001"}'),
        ("3", b'{"v": -5.5}'),
        ("4", b'{"v": 1e30}'),
        ("5", b'{"v": "0.0000000000001"}'),
        ("6", b'{"v": "12\\n"}'),
        ("7", b'{"v": 1e400}'),
    )
    drain_once(max_events=10)
    rollup = Rollup.objects.get()
    assert rollup.event_count == 7
    with localcontext(prec=60):  # Python's default 28 digits would round the expected value
        expected = Decimal("999999999999999.999999999999") + Decimal("0.000000000001") - Decimal("5.5")
    assert rollup.value_sum == expected
    assert rollup.value_min == Decimal("-5.5") and rollup.value_max == Decimal("999999999999999.999999999999")
    assert rollups_check() == []


@pytest.mark.django_db
def test_group_texts_agree_between_the_drainer_and_sql(in_a):
    meter_create(actor=None, code="g", name="G", event_type="m", aggregation="count", group_by=["k"])
    land(
        ("1", b'{"k": 1e3}'),
        ("2", b'{"k": 1000}'),
        ("3", b'{"k": -0.0}'),
        ("4", b'{"k": {"a": 1}}'),
        ("5", b'{"k": [1]}'),
        ("6", b'{"k": true}'),
        ("7", b'{"k": null}'),
        ("8", b"{}"),
        ("9", b'{"k": 1.50}'),
    )
    drain_once(max_events=20)
    keys = dict(Rollup.objects.values_list("group_key", "event_count"))
    assert keys == {
        '["1000"]': 2,
        '["0.0"]': 1,
        '["<object>"]': 1,
        '["<array>"]': 1,
        '["true"]': 1,
        "[null]": 2,
        '["1.50"]': 1,
    }
    assert rollups_check() == []


@pytest.mark.django_db
def test_a_batch_the_database_refuses_goes_to_dead_letters_and_the_rest_flows(in_a):
    meter_create(actor=None, code="n", name="N", event_type="m", aggregation="count")
    land(("ok-1", b"{}"))
    land(("bad", b'{"x": "\\u0000"}'))  # bypasses ingestion's check: jsonb refuses it
    land(("ok-2", b"{}"))
    call_command("metering_drain", "--once", stdout=StringIO())
    connection.set_tenant(in_a)  # the command visited every tenant
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["ok-1", "ok-2"]
    assert LandingBatch.objects.count() == 0
    dead = LandingDeadLetter.objects.get()
    assert dead.event_count == 1
    assert "unsupported Unicode escape sequence" in dead.error
    assert sum(Rollup.objects.values_list("event_count", flat=True)) == 2
