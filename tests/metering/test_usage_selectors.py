"""metering.selectors.usage on real PostgreSQL: every aggregation with filters and groups, exact
values worked out by hand, half-open boundaries, rollup/raw edges, series, query counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

import msgspec
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import DomainError
from metering.models import Meter, Rollup
from metering.selectors.usage import usage_for_customer, usage_get
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from metering.services.rollups import rollups_rebuild

D = Decimal


def at(hour: int, minute: int = 0, second: int = 0, *, day: int = 10) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def div(numerator, denominator) -> Decimal:
    """A quotient as the selector computes it (34 significant digits)."""
    with localcontext(prec=34):
        return D(numerator) / D(denominator)


def store(*events) -> None:
    """Events as (id, customer, type, timestamp, properties as a dict or raw JSON text)."""
    rows = []
    for event_id, customer, event_type, timestamp, properties in events:
        raw = properties.encode() if isinstance(properties, str) else msgspec.json.encode(properties)
        rows.append((event_id, customer, event_type, timestamp, msgspec.Raw(raw)))
    landing_store(events=rows, received_at=datetime.now(UTC))
    result = drain_once(max_events=100_000)
    assert result.inserted == len(rows)


def statements(context: CaptureQueriesContext) -> list[str]:
    """The queries run, without django-tenants' per-connection `SET search_path`."""
    return [q["sql"] for q in context.captured_queries if not q["sql"].startswith("SET search_path")]


def meter(
    code: str,
    aggregation: str,
    *,
    event_type: str = "req",
    value: str = "",
    filters=None,
    group_by=None,
    allow_negative: bool = True,
):
    # Signed values by default: these tests are about aggregation arithmetic (a -1 must lower a
    # sum and a min); the sign rule has its own tests (test_event_values.py).
    return Meter.objects.create(
        code=code,
        name=code,
        event_type=event_type,
        aggregation=aggregation,
        value_property=value,
        filters=filters or [],
        group_by=group_by or [],
        allow_negative=allow_negative,
    )


EU = [{"property": "region", "operator": "eq", "value": "eu"}]


@pytest.fixture
def traffic(in_a):
    """Meters on `req` events of region eu, split by plan, and the events (c1 unless noted):

    10:05 eu bytes 10 pro | 10:40 eu "2.5" free | 11:10 us 100 pro (filtered out) | 11:20 eu 7 pro
    11:50 eu (no bytes) pro | 12:30 eu -1 free | c2 10:30 eu 1000 | type `other` 10:30 eu 1000
    """
    meters = {
        agg: meter(agg, agg, value="" if agg == "count" else "bytes", filters=EU, group_by=["plan"])
        for agg in ("count", "sum", "max", "min")
    }
    store(
        ("e1", "c1", "req", at(10, 5), {"region": "eu", "bytes": 10, "plan": "pro"}),
        ("e2", "c1", "req", at(10, 40), {"region": "eu", "bytes": "2.5", "plan": "free"}),
        ("e3", "c1", "req", at(11, 10), {"region": "us", "bytes": 100, "plan": "pro"}),
        ("e4", "c1", "req", at(11, 20), {"region": "eu", "bytes": 7, "plan": "pro"}),
        ("e5", "c1", "req", at(11, 50), {"region": "eu", "plan": "pro"}),
        ("e6", "c1", "req", at(12, 30), {"region": "eu", "bytes": -1, "plan": "free"}),
        ("x1", "c2", "req", at(10, 30), {"region": "eu", "bytes": 1000, "plan": "pro"}),
        ("x2", "c1", "other", at(10, 30), {"region": "eu", "bytes": 1000, "plan": "pro"}),
    )
    return meters


def value(m, start, end, **kwargs):
    return usage_get(meter=m, customer="c1", start=start, end=end, **kwargs)


@pytest.mark.django_db
def test_rollup_aggregations_over_whole_hours_with_filters_and_groups(traffic):
    start, end = at(10), at(13)
    assert value(traffic["count"], start, end).value == D(5)
    assert value(traffic["sum"], start, end).value == D("18.5")
    assert value(traffic["max"], start, end).value == D(10)
    assert value(traffic["min"], start, end).value == D(-1)

    grouped = value(traffic["count"], start, end, group_by=True)
    assert grouped.value == D(5)
    assert grouped.groups == [{"group": {"plan": "free"}, "value": D(2)}, {"group": {"plan": "pro"}, "value": D(3)}]
    assert [g["value"] for g in value(traffic["sum"], start, end, group_by=True).groups] == [D("1.5"), D(17)]
    assert [g["value"] for g in value(traffic["max"], start, end, group_by=True).groups] == [D("2.5"), D(10)]
    assert [g["value"] for g in value(traffic["min"], start, end, group_by=True).groups] == [D(-1), D(7)]
    # the other customer has its own figure
    assert usage_get(meter=traffic["sum"], customer="c2", start=start, end=end).value == D(1000)
    # count is a Decimal too, and without group_by there are no groups
    result = value(traffic["count"], start, end)
    assert isinstance(result.value, Decimal)
    assert result.groups == []
    assert result.series == []


@pytest.mark.django_db
def test_partial_hours_at_the_edges_combine_rollups_and_raw_events(traffic):
    # [10:30, 11:00) raw (e2), [11:00, 12:00) rollup (e4, e5), [12:00, 12:15) raw (nothing: e6 is 12:30)
    start, end = at(10, 30), at(12, 15)
    assert value(traffic["count"], start, end).value == D(3)
    assert value(traffic["sum"], start, end).value == D("9.5")
    assert value(traffic["max"], start, end).value == D(7)
    assert value(traffic["min"], start, end).value == D("2.5")
    grouped = value(traffic["sum"], start, end, group_by=True)
    assert grouped.groups == [{"group": {"plan": "free"}, "value": D("2.5")}, {"group": {"plan": "pro"}, "value": D(7)}]

    # Prove where each part comes from: a rollup row changed behind the selector's back shows up
    # in the whole hour only; the edges and a range inside one hour read raw events.
    Rollup.objects.filter(meter=traffic["count"], customer="c1", hour=at(11)).update(event_count=100 + 2)
    Rollup.objects.filter(meter=traffic["count"], customer="c1", hour=at(10)).update(event_count=50)
    assert value(traffic["count"], start, end).value == D(1 + 102)
    assert value(traffic["count"], at(10, 30), at(11)).value == D(1)
    assert value(traffic["count"], at(10, 1), at(10, 59)).value == D(2)


@pytest.mark.django_db
def test_half_open_boundaries_on_and_off_the_hour(in_a):
    m = meter("calls", "sum", value="n")
    store(
        ("a", "c1", "req", at(10), {"n": 1}),
        ("b", "c1", "req", at(10, 15), {"n": 2}),
        ("c", "c1", "req", at(10, 45), {"n": 4}),
        ("d", "c1", "req", at(11), {"n": 8}),
    )
    assert value(m, at(10), at(11)).value == D(7)  # rollups: 10:00 in, 11:00 out
    assert value(m, at(10, 15), at(10, 45)).value == D(2)  # raw: 10:15 in, 10:45 out
    assert value(m, at(10, 15), at(11)).value == D(6)
    assert value(m, at(10, 45), at(11, 0, 1)).value == D(12)
    assert value(m, at(9), at(10)).value == D(0)
    assert value(m, at(11), at(11, 0, 0) + timedelta(microseconds=1)).value == D(8)


@pytest.mark.django_db
def test_empty_ranges(in_a):
    meters = [meter(a, a, value="" if a == "count" else "v") for a in ("count", "sum", "max", "min")]
    meters += [meter(a, a, value="v") for a in ("unique_count", "latest", "weighted_sum")]
    got = {m.code: value(m, at(10), at(11, 30)).value for m in meters}
    assert got == {
        "count": D(0),
        "sum": D(0),
        "max": None,
        "min": None,
        "unique_count": D(0),
        "latest": None,
        "weighted_sum": D(0),
    }


@pytest.mark.django_db
def test_events_without_a_value_are_counted_but_not_summed(in_a):
    count, total, low = meter("count", "count"), meter("sum", "sum", value="v"), meter("min", "min", value="v")
    store(
        ("a", "c1", "req", at(10, 10), {"v": "abc"}),
        ("b", "c1", "req", at(10, 20), {"v": None}),
        ("c", "c1", "req", at(10, 30), {"v": True}),
        ("d", "c1", "req", at(10, 40), {}),
        ("e", "c1", "req", at(10, 50), '{"v": 1e2}'),
        ("f", "c1", "req", at(11, 10), '{"v": "0.25"}'),
    )
    for start in (at(10), at(10, 5)):  # rollups and raw agree
        assert value(count, start, at(12)).value == D(6)
        assert value(total, start, at(12)).value == D("100.25")
        assert value(low, start, at(12)).value == D("0.25")
    # all events without a value: sum 0, min None
    assert value(total, at(10), at(10, 45)).value == D(0)
    assert value(low, at(10), at(10, 45)).value is None


@pytest.mark.django_db
def test_unique_count_counts_distinct_texts_with_filters_and_groups(in_a):
    m = meter(
        "users",
        "unique_count",
        value="user",
        filters=[{"property": "ok", "operator": "in", "values": [True]}],
        group_by=["region"],
    )
    store(
        ("a", "c1", "req", at(10, 5), {"user": "u1", "ok": True, "region": "eu"}),
        ("b", "c1", "req", at(10, 10), {"user": "u1", "ok": True, "region": "us"}),
        ("c", "c1", "req", at(10, 15), {"user": "u2", "ok": True, "region": "eu"}),
        ("d", "c1", "req", at(10, 20), {"user": "u3", "ok": False, "region": "eu"}),  # filtered out
        ("e", "c1", "req", at(10, 25), {"ok": True, "region": "eu"}),  # no user: not counted
        ("f", "c1", "req", at(10, 30), {"user": None, "ok": True, "region": "eu"}),  # null: not counted
        ("g", "c1", "req", at(10, 35), '{"user": 5, "ok": true}'),  # no region: group null
        ("h", "c1", "req", at(10, 40), '{"user": 5.0, "ok": true}'),  # another text than 5
        ("i", "c1", "req", at(11, 30), {"user": "u4", "ok": True, "region": "eu"}),
        ("j", "c2", "req", at(10, 30), {"user": "u9", "ok": True, "region": "eu"}),
    )
    result = value(m, at(10), at(11), group_by=True)
    assert result.value == D(4)  # u1, u2, 5, 5.0
    assert result.groups == [
        {"group": {"region": "eu"}, "value": D(2)},
        {"group": {"region": "us"}, "value": D(1)},
        {"group": {"region": None}, "value": D(2)},
    ]
    assert value(m, at(10), at(12)).value == D(5)
    assert value(m, at(10, 10), at(10, 15)).value == D(1)  # start in, end out


@pytest.mark.django_db
def test_latest_takes_the_last_event_with_a_value_ties_by_event_id(in_a):
    m = meter("seats", "latest", value="seats", filters=EU, group_by=["team"])
    store(
        ("a", "c1", "req", at(10, 5), {"seats": 3, "region": "eu", "team": "x"}),
        ("b", "c1", "req", at(10, 30), {"seats": 9, "region": "eu", "team": "y"}),
        ("c", "c1", "req", at(10, 30), {"seats": 4, "region": "eu", "team": "y"}),  # same instant, "c" > "b"
        ("d", "c1", "req", at(10, 50), {"seats": 99, "region": "us", "team": "x"}),  # filtered out
        ("e", "c1", "req", at(10, 55), {"region": "eu", "team": "x"}),  # no value: ignored
        ("f", "c1", "req", at(11), {"seats": 1, "region": "eu", "team": "x"}),  # at end: excluded
    )
    result = value(m, at(10), at(11), group_by=True)
    assert result.value == D(4)
    assert result.groups == [{"group": {"team": "x"}, "value": D(3)}, {"group": {"team": "y"}, "value": D(4)}]
    assert value(m, at(10), at(11, 0, 1)).value == D(1)
    assert value(m, at(10), at(10, 30)).value == D(3)
    assert value(m, at(10, 31), at(11)).value is None


@pytest.mark.django_db
def test_weighted_sum_worked_example(in_a):
    """10:00-11:00, carry-in 2 (09:30), 5 at 10:15, 0 at 10:45:
    (2 * 900 + 5 * 1800 + 0 * 900) / 3600 = 10800 / 3600 = 3."""
    m = meter("gauge", "weighted_sum", value="v")
    store(
        ("a", "c1", "req", at(9, 0), {"v": 7}),
        ("b", "c1", "req", at(9, 30), {"v": 2}),
        ("c", "c1", "req", at(10, 15), {"v": 5}),
        ("d", "c1", "req", at(10, 45), {"v": 0}),
        ("e", "c1", "req", at(11), {"v": 1000}),  # at end: holds for no time inside
    )
    assert value(m, at(10), at(11)).value == D(3)
    # No carry-in before 09:00: 0 for the first hour, then 7 for 30 min, then 2 for 30 min.
    assert value(m, at(8), at(10)).value == D("2.25")  # (0*3600 + 7*1800 + 2*1800) / 7200
    # Carry-in 5 from 10:15, nothing after inside the range.
    assert value(m, at(10, 30), at(10, 40)).value == D(5)
    # Not a whole number: exact to 34 digits. 2*900 + 5*600 over 1500 s = 3.2
    assert value(m, at(10), at(10, 25)).value == D("3.2")
    # 10:25-11:05: carry-in 5 for 1200 s, 0 for 900 s, 1000 (the 11:00 event) for 300 s, over 2400 s
    assert value(m, at(10, 25), at(11, 5)).value == div(306000, 2400)


@pytest.mark.django_db
def test_weighted_sum_event_at_start_replaces_the_carry_in_and_ties_hold_zero_seconds(in_a):
    m = meter("gauge", "weighted_sum", value="v", group_by=["host"])
    store(
        ("a", "c1", "req", at(9), {"v": 100, "host": "h1"}),
        ("b", "c1", "req", at(10), {"v": 4, "host": "h1"}),  # exactly at start
        ("c", "c1", "req", at(10, 30), {"v": 50, "host": "h2"}),
        ("d", "c1", "req", at(10, 30), {"v": 8, "host": "h2"}),  # tie: "d" > "c", "c" holds 0 s
        ("e", "c1", "req", at(8), {"v": 6, "host": "h2"}),  # carry-in of h2 only
    )
    result = value(m, at(10), at(11), group_by=True)
    # overall running value: 4 from 10:00, 8 from 10:30 -> (4*1800 + 8*1800) / 3600 = 6
    assert result.value == D(6)
    # per host: h1 holds 4 all hour; h2 carries 6 in, then 8 from 10:30 -> (6*1800 + 8*1800)/3600 = 7
    assert result.groups == [{"group": {"host": "h1"}, "value": D(4)}, {"group": {"host": "h2"}, "value": D(7)}]


@pytest.mark.django_db
def test_series_by_hour_for_rollup_and_raw_aggregations(traffic):
    with CaptureQueriesContext(connection) as context:
        result = value(traffic["count"], at(10, 30), at(13), window="hour", group_by=True)
    assert len(statements(context)) == 1
    assert result.value == D(4)
    assert result.series == [
        {"start": at(10, 30), "value": D(1)},  # e2 (e1 at 10:05 is before start)
        {"start": at(11), "value": D(2)},
        {"start": at(12), "value": D(1)},
    ]
    assert result.groups == [{"group": {"plan": "free"}, "value": D(2)}, {"group": {"plan": "pro"}, "value": D(2)}]
    maxes = value(traffic["max"], at(10), at(13, 30), window="hour").series
    assert [(b["start"], b["value"]) for b in maxes] == [
        (at(10), D(10)),
        (at(11), D(7)),
        (at(12), D(-1)),
        (at(13), None),
    ]


@pytest.mark.django_db
def test_series_over_bounds_cutting_hours_in_one_statement(traffic):
    # Buckets [10:00, 10:30) [10:30, 11:30) [11:30, 11:30) [11:30, 13:00): the hours 10 and 11 are
    # cut (read raw, each event in its own bucket), hour 12 is the rollup's; one bucket is empty.
    bounds = [at(10), at(10, 30), at(11, 30), at(11, 30), at(13)]
    distinct = meter("plans", "unique_count", value="plan", filters=EU)
    with CaptureQueriesContext(connection) as context:
        counts = value(traffic["count"], at(10), at(13), bounds=bounds, group_by=True)
    assert len(statements(context)) == 1
    assert counts.value == D(5)
    assert counts.groups == [{"group": {"plan": "free"}, "value": D(2)}, {"group": {"plan": "pro"}, "value": D(3)}]
    assert counts.series == [
        {"start": at(10), "value": D(1)},  # e1
        {"start": at(10, 30), "value": D(2)},  # e2, e4
        {"start": at(11, 30), "value": D(0)},
        {"start": at(11, 30), "value": D(2)},  # e5, e6
    ]
    expected = {
        "sum": [D(10), D("9.5"), D(0), D(-1)],
        "max": [D(10), D(7), None, D(-1)],
        "min": [D(10), D("2.5"), None, D(-1)],
    }
    for aggregation, values in expected.items():
        series = value(traffic[aggregation], at(10), at(13), bounds=bounds).series
        assert [b["value"] for b in series] == values, aggregation
    # the same figures as a statement per bucket
    for b in (0, 1, 3):
        alone = value(traffic["sum"], bounds[b], bounds[b + 1]).value
        assert alone == expected["sum"][b]
    assert [b["value"] for b in value(distinct, at(10), at(13), bounds=bounds).series] == [D(1), D(2), D(0), D(2)]


@pytest.mark.django_db
def test_bounds_must_run_from_start_to_end_for_a_grouping_set_aggregation(traffic):
    latest = meter("last", "latest", value="bytes")
    with pytest.raises(ValueError, match="ascend"):
        value(traffic["sum"], at(10), at(13), bounds=[at(10), at(12)])
    with pytest.raises(ValueError, match="ascend"):
        value(traffic["sum"], at(10), at(13), bounds=[at(10), at(12), at(11), at(13)])
    with pytest.raises(ValueError, match="window or bounds"):
        value(traffic["sum"], at(10), at(13), bounds=[at(10), at(13)], window="hour")
    with pytest.raises(ValueError, match="latest"):
        value(latest, at(10), at(13), bounds=[at(10), at(13)])


@pytest.mark.django_db
def test_series_by_day_and_for_computed_aggregations(in_a):
    total = meter("total", "sum", value="v")
    last = meter("last", "latest", value="v")
    users = meter("users", "unique_count", value="v")
    gauge = meter("gauge", "weighted_sum", value="v")
    store(
        ("a", "c1", "req", at(23, day=8), {"v": 10}),
        ("b", "c1", "req", at(12, day=9), {"v": 1}),
        ("c", "c1", "req", at(18, 30, day=9), {"v": 2}),
        ("d", "c1", "req", at(6, 15, day=11), {"v": 2}),
    )
    start, end = at(12, day=9), at(12, day=11)
    days = [at(12, day=9), at(0, day=10), at(0, day=11)]
    assert value(total, start, end, window="day").series == [
        {"start": days[0], "value": D(3)},
        {"start": days[1], "value": D(0)},
        {"start": days[2], "value": D(2)},
    ]
    assert [b["value"] for b in value(last, start, end, window="day").series] == [D(2), None, D(2)]
    assert [b["value"] for b in value(users, start, end, window="day").series] == [D(2), D(0), D(1)]
    with CaptureQueriesContext(connection) as context:
        weighted = value(gauge, start, end, window="day", group_by=True)
    assert len(statements(context)) == 1
    # day 9 (12 h): 1 for 6.5 h, 2 for 5.5 h -> (1*23400 + 2*19800) / 43200; day 10: 2 all day;
    # day 11 (12 h): 2 until 06:15, then 2 -> 2. Overall: (23400 + 2*(19800 + 86400 + 43200)) / 172800
    assert [b["value"] for b in weighted.series] == [div(63000, 43200), D(2), D(2)]
    assert weighted.value == div(322200, 172800)
    assert weighted.groups == []  # the meter has no group_by


@pytest.mark.django_db
def test_weighted_series_by_hour_worked_example(in_a):
    m = meter("gauge", "weighted_sum", value="v")
    store(
        ("b", "c1", "req", at(9, 30), {"v": 2}),
        ("c", "c1", "req", at(10, 15), {"v": 5}),
        ("d", "c1", "req", at(10, 45), {"v": 0}),
        ("e", "c1", "req", at(11, 30), {"v": 4}),
    )
    series = value(m, at(10), at(12), window="hour").series
    assert series == [{"start": at(10), "value": D(3)}, {"start": at(11), "value": D(2)}]


@pytest.mark.django_db
def test_rollups_and_raw_agree_on_group_texts_and_rebuild(in_a):
    store(
        ("a", "c1", "req", at(10, 10), {"v": 1, "tier": 2, "ok": True}),
        ("b", "c1", "req", at(10, 50), {"v": 2, "tier": 2, "ok": True}),
        ("c", "c1", "req", at(11, 10), {"v": 4, "ok": False}),
    )
    # The meter appears after the events were drained: the rebuild backfills its rollups.
    m = meter("v", "sum", value="v", group_by=["tier", "ok"])
    rollups_rebuild(meter_ids=[m.id])
    for start in (at(10), at(10, 30)):
        result = value(m, start, at(12), group_by=True)
        first = D(3) if start == at(10) else D(2)
        assert result.groups == [
            {"group": {"tier": "2", "ok": "true"}, "value": first},
            {"group": {"tier": None, "ok": "false"}, "value": D(4)},
        ]


@pytest.mark.django_db
def test_usage_for_customer_reads_every_meter_in_one_statement(traffic):
    meter("users", "unique_count", value="plan")
    meter("last", "latest", value="bytes", filters=EU)
    meter("gauge", "weighted_sum", value="bytes", filters=EU)
    with CaptureQueriesContext(connection) as context:
        got = usage_for_customer(customer="c1", start=at(10, 30), end=at(12, 15))
    assert len(statements(context)) == 2  # the meters, then one statement for all seven
    assert got == {
        "count": D(3),
        "gauge": div(35100, 6300),
        "last": D(7),
        "max": D(7),
        "min": D("2.5"),
        "sum": D("9.5"),
        "users": D(2),
    }
    # gauge over 10:30-12:15 (eu, with a value): carry-in 10 (10:05), 2.5 at 10:40, 7 at 11:20:
    # (10*600 + 2.5*2400 + 7*3300) / 6300 = 35100 / 6300; users: plans free and pro.
    assert usage_for_customer(customer="nobody", start=at(10), end=at(11))["count"] == D(0)


@pytest.mark.django_db
def test_invalid_requests(traffic):
    m = traffic["count"]
    with pytest.raises(DomainError) as err:
        value(m, at(11), at(11))
    assert err.value.code == "invalid_range"
    with pytest.raises(DomainError) as err:
        value(m, at(10), at(11), window="week")
    assert err.value.code == "invalid_window"
    with pytest.raises(DomainError) as err:
        value(m, at(0, day=1), at(0, day=1) + timedelta(days=31, seconds=1), window="hour")
    assert err.value.code == "window_too_large"
    assert len(value(m, at(0, day=1), at(0, day=1) + timedelta(days=31), window="hour").series) == 744
    with pytest.raises(ValueError):
        value(m, datetime(2026, 3, 10, 10), at(11))


@pytest.mark.django_db
def test_a_filter_path_that_could_break_out_of_sql_is_refused(in_a):
    m = meter("evil", "count", filters=[{"property": "a}' OR true OR '{", "operator": "eq", "value": 1}])
    with pytest.raises(DomainError) as err:
        value(m, at(10), at(11))
    assert err.value.code == "invalid_meter"
