"""metering.selectors.usage_bulk on real PostgreSQL: for every aggregation, with and without groups,
the bulk figures equal usage_get window by window (exact Decimals, None included), on whole-hour
and mid-hour windows, several windows per customer, customers without events; statements per
call; per-event values and their order; and a property test against usage_get."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import DomainError
from metering.selectors import usage_bulk as usage_bulk_module
from metering.selectors.usage import usage_get
from metering.selectors.usage_bulk import BulkUsage, UsageWindow, event_values_bulk, usage_bulk
from tests.metering.test_usage_selectors import EU, at, div, meter, statements, store

D = Decimal
AGGREGATIONS = ("count", "sum", "max", "min", "unique_count", "latest", "weighted_sum")


def expected(m, window: UsageWindow, *, group_by: bool) -> BulkUsage:
    result = usage_get(meter=m, customer=window.customer, start=window.start, end=window.end, group_by=group_by)
    return BulkUsage(value=result.value, groups={tuple(g["group"].values()): g["value"] for g in result.groups})


def exact(usage: BulkUsage) -> tuple:
    """Value and groups in order, each Decimal with its text: 1 and 1.0 would differ."""

    def text(value):
        return None if value is None else (value, str(value))

    return text(usage.value), [(group, text(value)) for group, value in usage.groups.items()]


def assert_equals_usage_get(m, windows, *, group_by: bool) -> dict[UsageWindow, BulkUsage]:
    got = usage_bulk(meter=m, windows=windows, group_by=group_by)
    assert set(got) == set(windows)
    for window in windows:
        assert exact(got[window]) == exact(expected(m, window, group_by=group_by)), (m.code, window)
    return got


def all_meters(*, filters=None, group_by=None) -> dict[str, object]:
    return {
        agg: meter(agg, agg, value="" if agg == "count" else "v", filters=filters, group_by=group_by)
        for agg in AGGREGATIONS
    }


@pytest.fixture
def world(in_a):
    """Seven meters on `req` events of region eu, split by plan, and the events (c1 unless noted):

    08:30 4 pro | 10:05 10 pro | 10:40 "2.5" free | 11:10 us 100 pro (filtered out) | 11:20 7 pro
    11:50 (no v) pro | 12:30 "B" -1 free and "a" 3 free (a tie: "B" < "a" in byte order)
    13:15 5 (no plan) | 13:40 10 pro | c2 10:00 2 pro, 10:30 1000 pro, 11:00 1 free
    type `other` c1 10:30 1000 pro
    """
    meters = all_meters(filters=EU, group_by=["plan"])
    store(
        ("p1", "c1", "req", at(8, 30), {"region": "eu", "v": 4, "plan": "pro"}),
        ("e1", "c1", "req", at(10, 5), {"region": "eu", "v": 10, "plan": "pro"}),
        ("e2", "c1", "req", at(10, 40), {"region": "eu", "v": "2.5", "plan": "free"}),
        ("e3", "c1", "req", at(11, 10), {"region": "us", "v": 100, "plan": "pro"}),
        ("e4", "c1", "req", at(11, 20), {"region": "eu", "v": 7, "plan": "pro"}),
        ("e5", "c1", "req", at(11, 50), {"region": "eu", "plan": "pro"}),
        ("B", "c1", "req", at(12, 30), {"region": "eu", "v": -1, "plan": "free"}),
        ("a", "c1", "req", at(12, 30), {"region": "eu", "v": 3, "plan": "free"}),
        ("e7", "c1", "req", at(13, 15), {"region": "eu", "v": 5}),
        ("e8", "c1", "req", at(13, 40), {"region": "eu", "v": 10, "plan": "pro"}),
        ("x1", "c2", "req", at(10, 30), {"region": "eu", "v": 1000, "plan": "pro"}),
        ("x3", "c2", "req", at(10), {"region": "eu", "v": 2, "plan": "pro"}),  # on the hour
        ("x4", "c2", "req", at(11), {"region": "eu", "v": 1, "plan": "free"}),  # on the hour
        ("x2", "c1", "other", at(10, 30), {"region": "eu", "v": 1000, "plan": "pro"}),
    )
    return meters


PLUS_TWO = timezone(timedelta(hours=2))
WINDOWS = [
    UsageWindow("c1", at(10), at(13)),  # whole hours: rollups only
    UsageWindow("c1", at(10, 30), at(12, 15)),  # raw edges around a rollup hour
    UsageWindow("c1", at(10, 5), at(10, 50)),  # inside one hour: raw only
    UsageWindow("c1", at(9), at(11, 20)),  # a period split by a plan change ...
    UsageWindow("c1", at(11, 20), at(14)),  # ... and its second part
    UsageWindow("c1", at(7), at(8)),  # before any event
    UsageWindow("c1", at(9), at(10, 0, 1)),  # nothing but a carry-in, and one event
    UsageWindow("c2", at(10), at(11)),
    UsageWindow("c2", at(9, 50), at(11, 30)),  # events exactly where the rollup hours begin and end
    UsageWindow("nobody", at(10), at(14)),
    UsageWindow("nobody", at(10, 10), at(10, 20)),
    UsageWindow("c1", datetime(2026, 3, 10, 12, 30, tzinfo=PLUS_TWO), at(12)),  # 10:30 UTC in another zone
]


@pytest.mark.django_db
@pytest.mark.parametrize("group_by", [False, True])
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_bulk_equals_usage_get_for_every_window(world, aggregation, group_by):
    with CaptureQueriesContext(connection) as context:
        got = usage_bulk(meter=world[aggregation], windows=[*WINDOWS, WINDOWS[0]], group_by=group_by)
    assert len(statements(context)) == 1
    assert len(got) == len(WINDOWS)
    assert_equals_usage_get(world[aggregation], WINDOWS, group_by=group_by)


@pytest.mark.django_db
def test_bulk_figures_worked_by_hand(world):
    whole, mid, split_a, split_b, nobody = WINDOWS[0], WINDOWS[1], WINDOWS[3], WINDOWS[4], WINDOWS[9]

    def get(aggregation, group_by=False):
        return usage_bulk(meter=world[aggregation], windows=WINDOWS, group_by=group_by)

    assert get("count")[whole] == BulkUsage(value=D(6))  # e1 e2 e4 e5 B a
    assert get("sum")[whole].value == D("21.5")
    assert get("sum", True)[whole].groups == {("free",): D("4.5"), ("pro",): D(17)}
    assert get("sum")[mid].value == D("9.5")  # e2 (raw), e4 + e5 (rollup 11h); 12:00-12:15 nothing
    assert get("max")[mid].value == D(7)
    assert get("min")[whole].value == D(-1)
    assert get("latest")[whole].value == D(3)  # "a" wins the 12:30 tie
    assert get("latest", True)[split_b].groups == {("free",): D(3), ("pro",): D(10), (None,): D(5)}
    assert get("unique_count")[split_b].value == D(5)  # 7, -1, 3, 5, 10
    # split_a 09:00-11:20: carry-in 4 (08:30) for 3900 s, 10 for 2100 s, 2.5 for 2400 s, over 8400 s
    assert get("weighted_sum")[split_a].value == div(4 * 3900 + 10 * 2100 + D("2.5") * 2400, 8400)
    # split_b 11:20-14:00: e4 at the start replaces the carry-in 2.5; 7 for 4200 s, "B" 0 s,
    # 3 for 2700 s, 5 for 1500 s, 10 for 1200 s: 57000 / 9600
    assert get("weighted_sum")[split_b].value == D("5.9375")
    on_the_hour = WINDOWS[8]  # [09:50, 10:00) raw, [10:00, 11:00) rollup, [11:00, 11:30) raw
    assert get("count")[on_the_hour].value == D(3)
    assert get("sum", True)[on_the_hour].groups == {("free",): D(1), ("pro",): D(1002)}
    assert get("sum")[WINDOWS[7]].value == D(1002)  # 11:00 is the end: out
    for aggregation in AGGREGATIONS:
        empty = D(0) if aggregation in ("count", "sum", "unique_count", "weighted_sum") else None
        assert get(aggregation, True)[nobody] == BulkUsage(value=empty, groups={})


@pytest.mark.django_db
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_bulk_with_two_group_paths_and_no_filters(in_a, aggregation):
    meters = all_meters(group_by=["plan", "tier"])
    store(
        ("a", "c1", "req", at(9, 50), {"v": 2, "plan": "pro", "tier": 1}),
        ("b", "c1", "req", at(10, 10), {"v": 3, "plan": "pro", "tier": 1}),
        ("c", "c1", "req", at(10, 20), {"v": 5, "plan": "pro", "tier": "1"}),
        ("d", "c1", "req", at(10, 30), {"v": 8, "plan": "free"}),
        ("e", "c1", "req", at(11, 30), '{"v": 1e2, "plan": {"x": 1}, "tier": true}'),
        ("f", "c2", "req", at(11, 45), {"v": "0.25", "plan": "pro", "tier": 2}),
    )
    windows = [
        UsageWindow("c1", at(10), at(12)),
        UsageWindow("c1", at(10, 15), at(11, 45)),
        UsageWindow("c2", at(11), at(12)),
        UsageWindow("c3", at(11), at(12)),
    ]
    for group_by in (False, True):
        got = assert_equals_usage_get(meters[aggregation], windows, group_by=group_by)
    assert set(got[windows[0]].groups) >= {("pro", "1"), ("free", None)}


@pytest.mark.django_db
@pytest.mark.parametrize("group_by", [False, True])
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_one_statement_for_300_windows(in_a, aggregation, group_by):
    m = all_meters(filters=EU, group_by=["plan"])[aggregation]
    store(
        *[
            (
                f"e{n}",
                f"c{n % 150}",
                "req",
                at(9 + n % 4, 7 * n % 60),
                {"region": "eu", "v": n % 9, "plan": f"p{n % 2}"},
            )
            for n in range(600)
        ]
    )
    # 150 customers with a month split in two, mid-hour boundaries (both rollup and raw parts).
    windows = [UsageWindow(f"c{n}", at(0, 0, day=1), at(10, 30 + n % 20)) for n in range(150)]
    windows += [UsageWindow(f"c{n}", at(10, 30 + n % 20), at(0, 0, day=31)) for n in range(150)]
    with CaptureQueriesContext(connection) as context:
        got = usage_bulk(meter=m, windows=windows, group_by=group_by)
    assert len(statements(context)) == 1
    assert len(got) == 300
    assert_equals_usage_get(m, windows[::37], group_by=group_by)


@pytest.mark.django_db
def test_chunks_of_windows_are_one_statement_each(world, monkeypatch):
    starts = [at(8) + timedelta(minutes=n) for n in range(250)]
    windows = [UsageWindow(f"c{n % 3}", s, s + timedelta(minutes=30 + 7 * n % 200)) for n, s in enumerate(starts)]
    for aggregation in ("count", "weighted_sum"):
        whole = usage_bulk(meter=world[aggregation], windows=windows, group_by=True)
        monkeypatch.setattr(usage_bulk_module, "WINDOWS_PER_STATEMENT", 100)
        with CaptureQueriesContext(connection) as context:
            chunked = usage_bulk(meter=world[aggregation], windows=windows, group_by=True)
        monkeypatch.undo()
        assert len(statements(context)) == 3
        assert chunked == whole
        assert_equals_usage_get(world[aggregation], windows[::50], group_by=True)


@pytest.mark.django_db
def test_no_windows_no_query_and_invalid_windows_refused_before_any_query(world):
    with CaptureQueriesContext(connection) as context:
        assert usage_bulk(meter=world["sum"], windows=[]) == {}
        assert event_values_bulk(meter=world["sum"], windows=[]) == {}
        with pytest.raises(DomainError) as err:
            usage_bulk(meter=world["sum"], windows=[WINDOWS[0], UsageWindow("c1", at(11), at(11))])
        assert err.value.code == "invalid_range"
        with pytest.raises(ValueError):
            usage_bulk(meter=world["sum"], windows=[UsageWindow("c1", datetime(2026, 3, 10, 10), at(11))])
        with pytest.raises(DomainError) as err:
            event_values_bulk(meter=world["count"], windows=WINDOWS)
        assert err.value.code == "meter_without_value"
    assert statements(context) == []
    evil = meter("evil", "count", filters=[{"property": "a}' OR true OR '{", "operator": "eq", "value": 1}])
    with pytest.raises(DomainError) as err:
        usage_bulk(meter=evil, windows=WINDOWS)
    assert err.value.code == "invalid_meter"


# --- event_values_bulk ------------------------------------------------------------------------


@pytest.mark.django_db
def test_event_values_in_timestamp_and_event_id_byte_order(world):
    whole, mid, inside, nobody = WINDOWS[0], WINDOWS[1], WINDOWS[2], WINDOWS[9]
    with CaptureQueriesContext(connection) as context:
        got = event_values_bulk(meter=world["sum"], windows=WINDOWS)
    assert len(statements(context)) == 1
    # e1 10, e2 "2.5", e4 7 (e3 filtered out, e5 without a value), then the 12:30 tie: "B" before "a"
    assert got[whole] == {(): [D(10), D("2.5"), D(7), D(-1), D(3)]}
    assert [str(v) for v in got[whole][()]] == ["10", "2.5", "7", "-1", "3"]
    assert got[mid] == {(): [D("2.5"), D(7)]}
    assert got[inside] == {(): [D(10), D("2.5")]}
    assert got[nobody] == {(): []}
    grouped = event_values_bulk(meter=world["sum"], windows=WINDOWS, group_by=True)
    assert grouped[whole] == {("free",): [D("2.5"), D(-1), D(3)], ("pro",): [D(10), D(7)]}
    assert list(grouped[WINDOWS[4]]) == [("free",), ("pro",), (None,)]  # usage_get's group order
    assert grouped[nobody] == {}


@pytest.mark.django_db
def test_event_values_sum_to_the_sum_meter(world):
    sums = usage_bulk(meter=world["sum"], windows=WINDOWS, group_by=True)
    values = event_values_bulk(meter=world["sum"], windows=WINDOWS)
    grouped = event_values_bulk(meter=world["sum"], windows=WINDOWS, group_by=True)
    for window in WINDOWS:
        assert sum(values[window][()], D(0)) == sums[window].value
        for group, total in sums[window].groups.items():
            assert sum(grouped[window].get(group, []), D(0)) == total
    # any value aggregation reads the same values: a max meter's too
    assert event_values_bulk(meter=world["max"], windows=WINDOWS) == values


# --- property test against usage_get ------------------------------------------------------------

BASE = at(8)
event_values = st.one_of(
    st.integers(-5, 20),
    st.sampled_from(["2.5", "-0.75", "abc", "1e3", None, True]),
    st.just("<missing>"),
)
events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3"]),
        st.integers(0, 6 * 60 // 5).map(lambda n: BASE + timedelta(minutes=5 * n)),  # collisions: ties
        event_values,
        st.sampled_from(["a", "b", None]),  # group
        st.sampled_from(["eu", "eu", "us"]),  # filtered on
        st.sampled_from(["x", "B", "a", "_"]),  # event id prefix (byte order differs from most collations)
        st.sampled_from(["req", "req", "req", "other"]),
    ),
    max_size=40,
)
windows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3", "c4"]),
        st.integers(0, 7 * 4).map(lambda n: BASE - timedelta(minutes=30) + timedelta(minutes=15 * n)),
        st.integers(1, 5 * 60),
    ).map(lambda t: UsageWindow(t[0], t[1], t[1] + timedelta(minutes=t[2]))),
    min_size=1,
    max_size=6,
)


def _matching(events, customer: str, *, group_by: bool) -> list[tuple]:
    """(ts, event id bytes, group, value or None, unique text or None) of the customer's events a
    meter on `req` events of region eu matches, in (timestamp, event id byte order)."""
    out = []
    for event_id, event_customer, ts, value, group, region, event_type in events:
        if event_customer != customer or event_type != "req" or region != "eu":
            continue
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = D(value)
        elif isinstance(value, str) and value not in ("abc", "1e3", "<missing>"):
            number = D(value)
        if isinstance(value, bool):
            text = "true"
        elif isinstance(value, int):
            text = str(value)
        else:
            text = None if value in (None, "<missing>") else value
        out.append((ts, event_id.encode(), (group,) if group_by else (), number, text))
    return sorted(out, key=lambda e: (e[0], e[1]))


def python_values(events, window: UsageWindow, *, group_by: bool) -> dict[tuple, list[Decimal]]:
    """event_values_bulk worked out in Python from the generated events."""
    out: dict[tuple, list[Decimal]] = {} if group_by else {(): []}
    for ts, _, group, number, _ in _matching(events, window.customer, group_by=group_by):
        if window.start <= ts < window.end and number is not None:
            out.setdefault(group, []).append(number)
    return out


def python_usage(events, aggregation: str, window: UsageWindow, *, group_by: bool) -> BulkUsage:
    """The usage figures worked out in Python from the generated events (the module docstring of
    metering.selectors.usage): an oracle independent of both selectors."""
    start, end = window.start, window.end
    everything = _matching(events, window.customer, group_by=False)
    by_group = _matching(events, window.customer, group_by=True) if group_by else []

    def figure(matched, group=None):
        rows = [e for e in matched if group is None or e[2] == group]
        inside = [e for e in rows if start <= e[0] < end]
        numbers = [e[3] for e in inside if e[3] is not None]
        if aggregation == "count":
            return D(len(inside))
        if aggregation == "sum":
            return sum(numbers, D(0))
        if aggregation in ("max", "min"):
            return (max if aggregation == "max" else min)(numbers, default=None)
        if aggregation == "unique_count":
            return D(len({e[4] for e in inside if e[4] is not None}))
        if aggregation == "latest":
            return numbers[-1] if numbers else None
        before = [e for e in rows if e[0] < start and e[3] is not None]
        points = ([(start, before[-1][3])] if before else []) + [(e[0], e[3]) for e in inside if e[3] is not None]
        held = D(0)
        for (since, number), (until, _) in zip(points, [*points[1:], (end, None)], strict=False):
            held += number * D((until - since) // timedelta(seconds=1))
        return div(held, (end - start) // timedelta(seconds=1))

    groups = {}
    for ts, _, group, number, text in by_group:
        if aggregation in ("count", "sum", "max", "min"):
            present = start <= ts < end
        elif aggregation == "unique_count":
            present = start <= ts < end and text is not None
        elif aggregation == "latest":
            present = start <= ts < end and number is not None
        else:  # weighted_sum: a carry-in or a value inside
            present = ts < end and number is not None
        if present:
            groups[group] = figure(by_group, group)
    return BulkUsage(value=figure(everything), groups=groups)


@pytest.fixture
def random_meters(in_a):
    return all_meters(filters=EU, group_by=["g"])


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=events_strategy, windows=windows_strategy)
def test_bulk_equals_usage_get_on_random_events_and_windows(random_meters, events, windows):
    rows, stored = [], []
    for n, (customer, ts, value, group, region, prefix, event_type) in enumerate(events):
        properties = {"region": region}
        if value != "<missing>":
            properties["v"] = value
        if group is not None:
            properties["g"] = group
        rows.append((f"{prefix}{n}", customer, event_type, ts, properties))
        stored.append((f"{prefix}{n}", customer, ts, value, group, region, event_type))
    with transaction.atomic():  # rolled back after each example
        if rows:
            store(*rows)
        for aggregation, m in random_meters.items():
            for group_by in (False, True):
                got = assert_equals_usage_get(m, windows, group_by=group_by)
                for window in windows:
                    oracle = python_usage(stored, aggregation, window, group_by=group_by)
                    assert got[window].value == oracle.value, (aggregation, window)
                    assert dict(got[window].groups) == oracle.groups, (aggregation, window)
        for group_by in (False, True):
            got = event_values_bulk(meter=random_meters["sum"], windows=windows, group_by=group_by)
            for window in windows:
                assert got[window] == python_values(stored, window, group_by=group_by), window
        transaction.set_rollback(True)
