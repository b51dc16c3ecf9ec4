"""The usage read API: default periods, shapes (decimals as strings, RFC 3339 UTC), tenant and
organization isolation, every 400 code, query counts."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from billing.models import Subscription
from billing.services.subscription import subscription_create
from metering.models import Meter
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from tests.factories import APIKeyFactory, MembershipFactory, OrganizationFactory, PlanVersionFactory
from tests.helpers import bearer, jwt_login

PERIOD = (datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 4, 5, tzinfo=UTC))


def store(*events) -> None:
    landing_store(
        events=[(i, c, "req", ts, msgspec.Raw(msgspec.json.encode(p))) for i, c, ts, p in events],
        received_at=datetime.now(UTC),
    )
    drain_once(max_events=100_000)


def meter(code: str, aggregation: str, value: str = "", group_by=None) -> Meter:
    return Meter.objects.create(
        code=code, name=code, event_type="req", aggregation=aggregation, value_property=value, group_by=group_by or []
    )


def subscribe(organization, start: datetime, end: datetime) -> Subscription:
    """A subscription whose current period is [start, end), as the usage API reads it."""
    with time_machine.travel(start, tick=False):  # a start more than a year back is refused
        subscription = subscription_create(
            actor=None, organization=organization, plan_version=PlanVersionFactory(), start_at=start
        )
    Subscription.objects.filter(pk=subscription.pk).update(current_period_start=start, current_period_end=end)
    subscription.refresh_from_db()
    return subscription


@pytest.fixture
def reader(in_a):
    return APIKeyFactory(name="reader", scopes=["read"]).secret


@pytest.fixture
def usage(in_a):
    """Meters and events for customer acme (subscribed for PERIOD) and ghost (no organization)."""
    meter("calls", "count")
    meter("bytes", "sum", value="bytes", group_by=["region"])
    meter("peak", "max", value="bytes")
    meter("seats", "latest", value="seats")
    acme = OrganizationFactory(external_id="acme")
    subscribe(acme, *PERIOD)
    store(
        ("before", "acme", datetime(2026, 3, 4, 23, 59, 59, tzinfo=UTC), {"bytes": 1000, "region": "eu"}),
        ("at-start", "acme", PERIOD[0], {"bytes": "2.50", "region": "eu"}),
        ("mid", "acme", datetime(2026, 3, 20, 10, 30, tzinfo=UTC), {"bytes": 10, "region": "us", "seats": 3}),
        ("at-end", "acme", PERIOD[1], {"bytes": 1000, "region": "eu"}),
        ("ghost-1", "ghost", datetime(2026, 3, 15, 8, tzinfo=UTC), {"bytes": 7}),
    )
    return acme


def get(client, token, path="/api/v1/usage", **params):
    return client.get(path, params, **bearer(token))


@pytest.mark.django_db
def test_usage_defaults_to_the_subscription_period(client_a, reader, usage):
    response = get(client_a, reader, customer="acme", meter="bytes")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "customer": "acme",
        "meter": "bytes",
        "from": "2026-03-05T00:00:00Z",
        "to": "2026-04-05T00:00:00Z",
        "value": "12.5",  # 2.50 at the start is in, 1000 at the end and 1000 before are out
        "groups": [],
        "series": [],
    }
    calls = get(client_a, reader, customer="acme", meter="calls").json()
    assert calls["value"] == "2"
    assert get(client_a, reader, customer="acme", meter="seats").json()["value"] == "3"


@pytest.mark.django_db
def test_explicit_range_groups_and_series(client_a, reader, usage):
    response = get(
        client_a,
        reader,
        customer="acme",
        meter="bytes",
        **{"from": "2026-03-04T23:00:00Z", "to": "2026-03-05T01:00:00+00:00", "group_by": "true", "window": "hour"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["from"] == "2026-03-04T23:00:00Z"
    assert body["to"] == "2026-03-05T01:00:00Z"
    assert body["value"] == "1002.5"
    assert body["groups"] == [{"group": {"region": "eu"}, "value": "1002.5"}]
    assert body["series"] == [
        {"start": "2026-03-04T23:00:00Z", "value": "1000"},
        {"start": "2026-03-05T00:00:00Z", "value": "2.5"},
    ]
    # offsets are converted to UTC; an unencoded "+" (a space after decoding) is understood
    shifted = client_a.get(
        "/api/v1/usage?customer=acme&meter=bytes&from=2026-03-05T01:00:00+01:00&to=2026-03-05T02:00:00+01:00",
        **bearer(reader),
    )
    assert shifted.status_code == 200, shifted.content
    assert (shifted.json()["from"], shifted.json()["value"]) == ("2026-03-05T00:00:00Z", "2.5")
    # max of nothing is null; sum of nothing is "0"
    quiet = {"from": "2026-03-06T00:00:00Z", "to": "2026-03-07T00:00:00Z"}
    assert get(client_a, reader, customer="acme", meter="peak", **quiet).json()["value"] is None
    assert get(client_a, reader, customer="acme", meter="bytes", **quiet).json()["value"] == "0"


@pytest.mark.django_db
def test_utc_month_without_subscription_or_organization(client_a, reader, usage):
    OrganizationFactory(external_id="nosub")
    with time_machine.travel(datetime(2026, 3, 15, 12, tzinfo=UTC), tick=False):
        ghost = get(client_a, reader, customer="ghost", meter="bytes")
        nosub = get(client_a, reader, customer="nosub", meter="calls")
        summary = get(client_a, reader, path="/api/v1/customers/ghost/usage")
    assert ghost.status_code == 200, ghost.content
    assert (ghost.json()["from"], ghost.json()["to"], ghost.json()["value"]) == (
        "2026-03-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
        "7",
    )
    assert (nosub.json()["from"], nosub.json()["value"]) == ("2026-03-01T00:00:00Z", "0")
    assert summary.json() == {
        "customer": "ghost",
        "from": "2026-03-01T00:00:00Z",
        "to": "2026-04-01T00:00:00Z",
        "meters": {"bytes": "7", "calls": "1", "peak": "7", "seats": None},
    }


@pytest.mark.django_db
def test_customer_usage_lists_every_meter_for_the_current_period(client_a, reader, usage):
    response = get(client_a, reader, path="/api/v1/customers/acme/usage")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "customer": "acme",
        "from": "2026-03-05T00:00:00Z",
        "to": "2026-04-05T00:00:00Z",
        "meters": {"bytes": "12.5", "calls": "2", "peak": "10", "seats": "3"},
    }


@pytest.mark.django_db
def test_queries_per_request(client_a, reader, usage):
    get(client_a, reader, customer="acme", meter="bytes")  # warm the API key cache
    with CaptureQueriesContext(connection) as single:
        assert get(client_a, reader, customer="acme", meter="bytes", group_by="true", window="day").status_code == 200
    with CaptureQueriesContext(connection) as summary:
        assert get(client_a, reader, path="/api/v1/customers/acme/usage").status_code == 200
    counted = [q["sql"] for q in single.captured_queries if not q["sql"].startswith("SET search_path")]
    # organization, subscription, meter, the usage statement
    assert len(counted) == 4, counted
    counted = [q["sql"] for q in summary.captured_queries if not q["sql"].startswith("SET search_path")]
    # organization, subscription, meters, one statement for all of them
    assert len(counted) == 4, counted


@pytest.mark.django_db
def test_tenant_isolation(tenant_a, tenant_b, client_a, client_b, usage, reader):
    response = get(client_b, reader, customer="acme", meter="bytes")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert get(client_b, reader, path="/api/v1/customers/acme/usage").status_code == 401
    # B's own key on B sees B's (empty) world: no such meter there
    with tenant_context(tenant_b):
        b_key = APIKeyFactory(name="b", scopes=["read"]).secret
    other = get(client_b, b_key, customer="acme", meter="bytes")
    assert other.status_code == 400
    assert other.json()["error"]["code"] == "unknown_meter"


@pytest.mark.django_db
def test_authentication_and_scope_are_required(client_a, usage):
    anonymous = client_a.get("/api/v1/usage", {"customer": "acme", "meter": "bytes"})
    assert anonymous.status_code == 401
    ingest_only = APIKeyFactory(name="ingest", scopes=["ingest"]).secret
    refused = get(client_a, ingest_only, customer="acme", meter="bytes")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert get(client_a, ingest_only, path="/api/v1/customers/acme/usage").status_code == 403


@pytest.mark.django_db
def test_members_see_only_their_own_organizations(client_a, usage):
    mine = MembershipFactory(organization=usage)
    OrganizationFactory(external_id="theirs")
    token = jwt_login(client_a, email=mine.user.email)

    own = get(client_a, token, customer="acme", meter="bytes")
    assert own.status_code == 200, own.content
    assert own.json()["value"] == "12.5"
    assert get(client_a, token, path="/api/v1/customers/acme/usage").status_code == 200
    for customer in ("theirs", "ghost", "nobody"):  # another's, events without an org, unknown
        for response in (
            get(client_a, token, customer=customer, meter="bytes"),
            get(client_a, token, path=f"/api/v1/customers/{customer}/usage"),
        ):
            assert response.status_code == 404, (customer, response.content)
            assert response.json()["error"]["code"] == "not_found"
    # the 404 comes before any meter check: nothing to learn from a member's probing
    assert get(client_a, token, customer="theirs", meter="nope").json()["error"]["code"] == "not_found"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"meter": "bytes"}, "missing_parameter"),
        ({"customer": "acme"}, "missing_parameter"),
        ({"customer": " ", "meter": "bytes"}, "missing_parameter"),
        ({"customer": "acme", "meter": "nope"}, "unknown_meter"),
        ({"customer": "acme", "meter": "bytes", "from": "yesterday"}, "invalid_datetime"),
        ({"customer": "acme", "meter": "bytes", "from": "2026-03-01T00:00:00"}, "invalid_datetime"),
        ({"customer": "acme", "meter": "bytes", "from": "2026-03-01"}, "invalid_datetime"),
        ({"customer": "acme", "meter": "bytes", "to": "2026-13-01T00:00:00Z"}, "invalid_datetime"),
        ({"customer": "acme", "meter": "bytes", "to": "2026-02-30T00:00:00Z"}, "invalid_datetime"),
        ({"customer": "acme", "meter": "bytes", "from": "0001-01-01T00:00:00+01:00"}, "invalid_datetime"),
        ({"customer": "acme", "meter": "bytes", "to": "9999-12-31T23:59:59-01:00"}, "invalid_datetime"),
        ({"customer": "acme", "meter": "bytes", "to": "2026-03-01T00:00:00\x00Z"}, "invalid_parameter"),
        (
            {"customer": "acme", "meter": "bytes", "from": "2026-03-02T00:00:00Z", "to": "2026-03-02T00:00:00Z"},
            "invalid_range",
        ),
        (
            {"customer": "acme", "meter": "bytes", "from": "2026-03-03T00:00:00Z", "to": "2026-03-02T00:00:00Z"},
            "invalid_range",
        ),
        ({"customer": "acme", "meter": "bytes", "from": "2026-05-01T00:00:00Z"}, "invalid_range"),  # after period end
        ({"customer": "acme", "meter": "bytes", "window": "week"}, "invalid_window"),
        ({"customer": "ac\x00me", "meter": "bytes"}, "invalid_parameter"),
        ({"customer": "acme", "meter": "by\x00tes"}, "invalid_parameter"),
        ({"customer": "acme", "meter": "bytes", "group_by": "yes please"}, "invalid_group_by"),
        (
            {"customer": "acme", "meter": "bytes", "window": "hour", "from": "2026-01-01T00:00:00Z"},
            "window_too_large",
        ),
        (
            {"customer": "acme", "meter": "bytes", "window": "day", "from": "2024-01-01T00:00:00Z"},
            "window_too_large",
        ),
    ],
)
def test_bad_requests_get_stable_codes(client_a, reader, usage, params, code):
    response = client_a.get("/api/v1/usage", params, **bearer(reader))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]


@pytest.mark.django_db
def test_odd_customers_never_make_a_500(client_a, reader, usage):
    for customer in ("x" * 300, "a b", "ünï", "%", "'; DROP TABLE metering_event; --"):
        response = get(client_a, reader, customer=customer, meter="bytes")
        assert response.status_code == 200, (customer, response.content)
        assert response.json()["value"] == "0"
    assert get(client_a, reader, path="/api/v1/customers/a%20b/usage").json()["customer"] == "a b"
    nul = get(client_a, reader, path="/api/v1/customers/a%00b/usage")
    assert nul.status_code == 400
    assert nul.json()["error"]["code"] == "invalid_parameter"
    assert get(client_a, reader, path="/api/v1/customers/" + "x" * 256 + "/usage").status_code == 404
