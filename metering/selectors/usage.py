"""Usage of a meter for a customer over a half-open range [start, end) of aware UTC instants.

Where the figures come from (ARCHITECTURE.md, "Usage reads"):

- count / sum / max / min: whole UTC hours inside the range from the hourly rollups, the partial
  hours at the edges (a range starting 10:30 or ending 17:45) from raw events. Both halves use
  the meter's own semantics (metering.meters), so an edge hour counts what the rollup would have.
- unique_count: `count(DISTINCT properties #>> value_path)` over raw events: the value property
  as text (5 and 5.0 are two values; strings count too); a missing or JSON-null property does not
  count.
- latest: the value of the last event in the range with a value, by timestamp, ties broken by
  event id (byte order). None when there is none.
- weighted_sum: the time-weighted average of a gauge, see `usage_get`.

Matching events without a value (missing, null, "abc"; see metering.meters) are counted by count
and ignored by every value aggregation. Empty ranges give 0 for count, sum, unique_count and
weighted_sum, and None for max, min and latest.

Every call is one SQL statement (usage_for_customer: one per 100 meters, plus loading the meters):
grouping sets give the overall value, the groups and the series in one pass; the raw part reads
the index range (customer, event_type, timestamp) of the edges only; a series of latest is one
backward index probe per bucket. Measured here (2M events, PostgreSQL 16, 2 vCPU): rollup
aggregations 1-2 ms for a month at any volume; the raw aggregations scan the customer's events
of the range: ~5-20 ms at 2.7k events a month, 0.4-2.4 s at 535k (grouped weighted_sum worst).
Past that size they need derived data of their own (e.g. an hourly last value and time-weighted
integral in the rollups, or distinct-count sketches).

Group values are the group_by properties as text (`#>>`); rollups keep the same texts as a JSON
array in `group_key`. The `value` of a grouped call is the ungrouped value (for latest and
weighted_sum that is not the sum of the groups: the latest event overall is one event).

Series buckets are UTC hours or days; bucket i covers [series[i].start, series[i+1].start) and
the last one ends at `end`, so the first bucket starts at `start` itself when `start` is not on a
bucket boundary. Every bucket is listed, empty ones with the empty value. Instead of a window, a
count, sum, max, min or unique_count series may take its own bucket boundaries (`bounds`, e.g.
an organization's local midnights): the rows are put in their bucket by `width_bucket` in the same
statement, so a month by local day is one statement and ~30 rows rather than 720 hourly buckets
folded in Python. An hour a boundary cuts is read from raw events, so such buckets are exact.
"""

# SQL text here is assembled from constants and the meter's property paths, which metering.meters
# validates (MeterSpec.from_meter, and again in sql_path) before inlining them as text[] literals.
# Every value travels as a parameter. The fragments shared with the bulk reads (matching events,
# latest, the time-weighted segments, the result rules) are metering.selectors.usage_sql.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from django.db import connection

from core.errors import DomainError
from metering.meters import MeterSpec, sql_path
from metering.models import Aggregation, Meter
from metering.models.meter import ROLLUP_AGGREGATIONS
from metering.selectors.usage_sql import (
    EID,
    KIND_BUCKET,
    KIND_GROUP,
    KIND_OVERALL,
    ROLLUP_VALUE,
    TS,
    Sql,
    ceil_hour,
    events_sql,
    finish,
    floor,
    group_columns,
    group_sort_key,
    held,
    hours_split,
    latest_groups_sql,
    latest_sql,
    null_groups,
    one_window,
    range_checked,
    rollup_group_columns,
    spec_get,
    weighted_segments_sql,
)

WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# The longest range a series may cover: 744 hourly or 366 daily buckets.
WINDOW_MAX_SPAN = {"hour": timedelta(days=31), "day": timedelta(days=366)}
# Scalar subqueries per statement in usage_for_customer (keeps statements and plans small).
METERS_PER_STATEMENT = 100

# Aggregations whose series is computed bucket by bucket (keyed by the bucket's own start).
_PER_BUCKET = frozenset({Aggregation.LATEST, Aggregation.WEIGHTED_SUM})


@dataclass(frozen=True)
class UsageResult:
    meter: str
    customer: str
    start: datetime
    end: datetime
    value: Decimal | None
    # [{"group": {path: text or None}, "value": Decimal | None}], sorted by the group values
    groups: list[dict[str, Any]] = field(default_factory=list)
    # [{"start": datetime, "value": Decimal | None}], every bucket of [start, end) in order
    series: list[dict[str, Any]] = field(default_factory=list)


def usage_get(
    *,
    meter: Meter,
    customer: str,
    start: datetime,
    end: datetime,
    group_by: bool = False,
    window: str | None = None,
    bounds: Sequence[datetime] | None = None,
) -> UsageResult:
    """The usage of `meter` by `customer` over [start, end), optionally split by the meter's
    group_by dimensions (`group_by=True`) and into UTC hour/day buckets (`window`) or the
    buckets [bounds[i], bounds[i + 1]) (`bounds`: ascending aware instants from `start` to `end`,
    an empty bucket allowed; count, sum, max, min and unique_count meters). One query.

    weighted_sum is the time-weighted average of a gauge. The running value at an instant is the
    value of the latest event at or before it (ties at one timestamp: the greatest event id holds,
    the others hold for zero seconds); at `start` it is the value of the latest event strictly
    before `start` (carry-in; 0 when there is none, so an unknown gauge counts as 0). Then

        weighted_sum = sum of value_i * seconds value_i held within [start, end) / (end - start) in seconds

    e.g. over 10:00-11:00 with a carry-in of 2 (an event at 09:30), 5 at 10:15 and 0 at 10:45:
    (2*900 + 5*1800 + 0*900) / 3600 = 3. The numerator is exact (numeric seconds to the
    microsecond); the division keeps 34 significant digits. Per group, the running value is the
    group's own (carry-in per group); per bucket, the bucket is the range.

    Raises DomainError `invalid_range` (start >= end), `invalid_window`, `window_too_large`;
    ValueError for bounds that do not run from start to end or a meter they do not apply to (a
    caller's mistake, not input).
    """
    start, end = range_checked(start, end)
    if bounds is not None:
        bounds = _bounds_checked(bounds, start, end, window=window, aggregation=meter.aggregation)
    if window is not None:
        if window not in WINDOWS:
            raise DomainError(f"window must be one of {', '.join(WINDOWS)}.", code="invalid_window")
        if end - start > WINDOW_MAX_SPAN[window]:
            raise DomainError(
                f"A series by {window} covers at most {WINDOW_MAX_SPAN[window].days} days; "
                "narrow from/to or use a coarser window.",
                code="window_too_large",
            )
    spec = spec_get(meter)
    k = len(spec.group_paths) if group_by else 0
    buckets = _buckets(start, end, window) if window else []
    if bounds is not None:
        buckets = list(pairwise(bounds))
    bucketed = window or bounds is not None

    aggregation = spec.aggregation
    if aggregation in ROLLUP_AGGREGATIONS:
        parts, params = _rollup_parts(spec, customer, start, end, k=k, window=window, bounds=bounds)
        sql, params = _grouping_statement(parts, params, ROLLUP_VALUE[aggregation], k=k, window=bucketed)
    elif aggregation == Aggregation.UNIQUE_COUNT:
        parts, params = _unique_parts(spec, customer, start, end, k=k, window=window, bounds=bounds)
        sql, params = _grouping_statement(parts, params, "count(DISTINCT p.u)", k=k, window=bucketed)
    elif aggregation == Aggregation.LATEST:
        sql, params = _latest_statement(spec, customer, start, end, k=k, buckets=buckets)
    elif aggregation == Aggregation.WEIGHTED_SUM:
        sql, params = _weighted_statement(spec, customer, start, end, k=k, buckets=buckets)
    else:  # pragma: no cover - the model's choices are exhaustive
        raise ValueError(f"Unknown aggregation {aggregation!r}")

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()

    overall: Any = None
    by_group: dict[tuple, Any] = {}
    by_bucket: dict[datetime, Any] = {}
    for row in rows:
        kind, values, bucket, value = row[0], tuple(row[1 : 1 + k]), row[1 + k], row[2 + k]
        if kind == KIND_OVERALL:
            overall = value
        elif kind == KIND_GROUP:
            by_group[values] = value
        else:
            by_bucket[bucket] = value

    paths = [".".join(path) for path in spec.group_paths]
    groups = [
        {"group": dict(zip(paths, values, strict=True)), "value": finish(aggregation, by_group[values], start, end)}
        for values in sorted(by_group, key=group_sort_key)
    ]
    series = []
    for index, (bucket_start, bucket_end) in enumerate(buckets):
        # Grouping-set buckets are keyed by the aligned boundary, per-bucket ones by their start,
        # bounds' buckets by width_bucket's number (1 for the first).
        if bounds is not None:
            key = index + 1
        else:
            key = bucket_start if aggregation in _PER_BUCKET else floor(bucket_start, window)
        series.append(
            {"start": bucket_start, "value": finish(aggregation, by_bucket.get(key), bucket_start, bucket_end)}
        )
    return UsageResult(
        meter=spec.code,
        customer=customer,
        start=start,
        end=end,
        value=finish(aggregation, overall, start, end),
        groups=groups,
        series=series,
    )


def usage_for_customer(*, customer: str, start: datetime, end: datetime) -> dict[str, Decimal | None]:
    """Every meter's value for `customer` over [start, end): {meter code: value}, same semantics
    as usage_get. One query for the meters, then one statement per METERS_PER_STATEMENT meters
    (each meter a scalar subquery)."""
    start, end = range_checked(start, end)
    specs = [spec_get(meter) for meter in Meter.objects.order_by("code")]
    out: dict[str, Decimal | None] = {}
    for offset in range(0, len(specs), METERS_PER_STATEMENT):
        chunk = specs[offset : offset + METERS_PER_STATEMENT]
        fragments = [_scalar(spec, customer, start, end) for spec in chunk]
        sql = "SELECT " + ", ".join(fragment for fragment, _ in fragments)
        params = [param for _, fragment_params in fragments for param in fragment_params]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        for spec, raw in zip(chunk, row, strict=True):
            out[spec.code] = finish(spec.aggregation, raw, start, end)
    return out


# --- time ---------------------------------------------------------------------------------------


def _bounds_checked(
    bounds: Sequence[datetime], start: datetime, end: datetime, *, window: str | None, aggregation: str
) -> list[datetime]:
    if window is not None:
        raise ValueError("a series takes a window or bounds, not both")
    if aggregation not in ROLLUP_AGGREGATIONS and aggregation != Aggregation.UNIQUE_COUNT:
        raise ValueError(f"bounds do not apply to {aggregation} (its buckets are read one by one)")
    out = [instant.astimezone(UTC) for instant in bounds]
    if len(out) < 2 or out[0] != start or out[-1] != end or any(a > b for a, b in pairwise(out)):
        raise ValueError("bounds must ascend from start to end")
    return out


def _cut_hours(bounds: list[datetime] | None) -> list[datetime]:
    """The UTC hours an inner boundary cuts (a local midnight at half past in UTC): their events
    are read raw so that each lands in its own bucket."""
    if not bounds:
        return []
    return sorted({floor(b, "hour") for b in bounds[1:-1] if ceil_hour(b) != b})


def _buckets(start: datetime, end: datetime, window: str) -> list[tuple[datetime, datetime]]:
    step = WINDOWS[window]
    out = []
    bucket_start = start
    boundary = floor(start, window) + step
    while bucket_start < end:
        bucket_end = min(boundary, end)
        out.append((bucket_start, bucket_end))
        bucket_start, boundary = bucket_end, boundary + step
    return out


# --- SQL fragments ----------------------------------------------------------------------------


def _bucket_sql(column: str, window: str) -> str:
    return f"(date_trunc('{window}', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


def _bounds_sql(column: str) -> str:
    """The number of the bounds' bucket holding `column` (1 for the first): the lower bounds are
    the statement's parameter."""
    return f"width_bucket({column}, %s::timestamptz[])"


def _raw_parts(
    spec: MeterSpec,
    customer: str,
    *,
    spans: list[tuple[datetime, datetime]],
    k: int = 0,
    window: str | None = None,
    bounds: list[datetime] | None = None,
    unique: bool = False,
) -> Sql:
    """SELECT g0.., b, ts, eid, value[, u] over the meter's matching events of `customer` in the
    union of `spans`."""
    columns = group_columns(spec, k=k)
    column_params: list[Any] = []
    if window:
        columns += f"{_bucket_sql(TS, window)} AS b, "
    elif bounds is not None:
        columns += f"{_bounds_sql(TS)} AS b, "
        column_params.append(bounds[:-1])
    columns += f"{TS} AS ts, {EID} AS eid, v.value AS value"
    if unique:
        assert spec.value_path is not None
        columns += f", (e.properties #>> {sql_path(spec.value_path)}) AS u"
    when = " OR ".join(f"({TS} >= %s AND {TS} < %s)" for _ in spans)
    events, params = events_sql(spec, when=when, unique=unique)
    # The customer as the window `w` that usage_sql's event fragment reads (one row: flattened).
    return f"SELECT {columns} FROM (SELECT %s::text AS c) w, {events}", [
        *column_params,
        customer,
        *params,
        *(instant for span in spans for instant in span),
    ]


def _unique_parts(
    spec: MeterSpec,
    customer: str,
    start: datetime,
    end: datetime,
    *,
    k: int,
    window: str | None,
    bounds: list[datetime] | None = None,
) -> Sql:
    """SELECT DISTINCT g0.., b, u: a hash aggregate first (far fewer rows than events), so the
    count(DISTINCT) over grouping sets sorts only the distinct texts."""
    raw, params = _raw_parts(spec, customer, k=k, window=window, bounds=bounds, spans=[(start, end)], unique=True)
    columns = [f"q.g{i}" for i in range(k)] + (["q.b"] if window or bounds is not None else []) + ["q.u"]
    return f"SELECT DISTINCT {', '.join(columns)} FROM ({raw}) q WHERE q.u IS NOT NULL", params


def _rollup_parts(
    spec: MeterSpec,
    customer: str,
    start: datetime,
    end: datetime,
    *,
    k: int,
    window: str | None,
    bounds: list[datetime] | None = None,
) -> Sql:
    """SELECT g0.., b, n, s, lo, hi: rollup rows for the whole hours, raw events for the edges
    (and for the hours the bounds cut)."""
    whole, edges = hours_split(start, end)
    cut = [hour for hour in _cut_hours(bounds) if whole is not None and whole[0] <= hour < whole[1]]
    edges = sorted([*edges, *((hour, hour + WINDOWS["hour"]) for hour in cut)])
    branches: list[Sql] = []
    if whole is not None:
        columns = rollup_group_columns(k)
        column_params: list[Any] = []
        if window:
            columns += f"{_bucket_sql('r.hour', window)} AS b, "
        elif bounds is not None:
            columns += f"{_bounds_sql('r.hour')} AS b, "
            column_params.append(bounds[:-1])
        columns += "r.event_count AS n, r.value_sum AS s, r.value_min AS lo, r.value_max AS hi"
        where = "r.customer = %s AND r.meter_id = %s AND r.hour >= %s AND r.hour < %s"
        where_params: list[Any] = [customer, spec.id, *whole]
        if cut:
            where += " AND r.hour <> ALL(%s::timestamptz[])"
            where_params.append(cut)
        branches.append((f"SELECT {columns} FROM metering_rollup r WHERE {where}", [*column_params, *where_params]))
    if edges:
        raw, params = _raw_parts(spec, customer, k=k, window=window, bounds=bounds, spans=edges)
        columns = [f"q.g{i}" for i in range(k)] + (["q.b"] if window or bounds is not None else [])
        columns += ["1::bigint AS n", "q.value AS s", "q.value AS lo", "q.value AS hi"]
        branches.append((f"SELECT {', '.join(columns)} FROM ({raw}) q", params))
    return " UNION ALL ".join(sql for sql, _ in branches), [p for _, params in branches for p in params]


def _grouping_statement(parts: str, params: list[Any], value: str, *, k: int, window: str | bool | None) -> Sql:
    """One pass over `parts` (aliased p) for the overall value, the groups and the buckets:
    rows (kind, g0.., b, value)."""
    group_cols = [f"p.g{i}" for i in range(k)]
    sets = ["()"]
    kinds = []
    if window:
        sets.append("(p.b)")
        kinds.append(f"WHEN GROUPING(p.b) = 0 THEN {KIND_BUCKET}")
    if k:
        sets.append("(" + ", ".join(group_cols) + ")")
        kinds.append(f"WHEN GROUPING(p.g0) = 0 THEN {KIND_GROUP}")
    kind = f"CASE {' '.join(kinds)} ELSE {KIND_OVERALL} END" if kinds else str(KIND_OVERALL)
    columns = [f"{kind} AS kind", *group_cols, "p.b" if window else "NULL::timestamptz AS b", f"{value} AS value"]
    sql = f"SELECT {', '.join(columns)} FROM ({parts}) p GROUP BY GROUPING SETS ({', '.join(sets)})"
    return sql, params


def _latest_statement(
    spec: MeterSpec, customer: str, start: datetime, end: datetime, *, k: int, buckets: list[tuple[datetime, datetime]]
) -> Sql:
    window, window_params = one_window(customer, start, end)
    latest, latest_params = latest_sql(spec)
    selects: list[Sql] = [
        (
            f"SELECT {KIND_OVERALL} AS kind, {null_groups(k)}NULL::timestamptz AS b, {latest} AS value FROM {window}",
            [*latest_params, *window_params],
        )
    ]
    if k:
        groups, params = latest_groups_sql(spec, k=k)
        g = ", ".join(f"pg.g{i}" for i in range(k))
        selects.append(
            (
                f"SELECT pg.kind, {g}, NULL::timestamptz AS b, pg.value FROM {window} CROSS JOIN LATERAL ({groups}) pg",
                [*window_params, *params],
            )
        )
    if buckets:
        # Per bucket, one backward index scan that stops at the first event with a value,
        # rather than sorting every event of the range.
        selects.append(
            (
                f"SELECT {KIND_BUCKET} AS kind, {null_groups(k)}w.ws AS b, {latest} AS value "
                "FROM (SELECT %s::text AS c, u.ws, u.we "
                "FROM unnest(%s::timestamptz[], %s::timestamptz[]) AS u(ws, we)) w",
                [*latest_params, customer, [b for b, _ in buckets], [e for _, e in buckets]],
            )
        )
    return " UNION ALL ".join(sql for sql, _ in selects), [p for _, params in selects for p in params]


def _weighted_cte(spec: MeterSpec, customer: str, start: datetime, end: datetime, *, k: int, name: str) -> Sql:
    """CTE `{name}` (g0.., s, f, value): the gauge's segments over [start, end) (usage_sql)."""
    window, window_params = one_window(customer, start, end)
    segments, params = weighted_segments_sql(spec, k=k)
    return f"{name} AS (SELECT x.* FROM {window} CROSS JOIN LATERAL ({segments}) x)", [*window_params, *params]


def _weighted_statement(
    spec: MeterSpec, customer: str, start: datetime, end: datetime, *, k: int, buckets: list[tuple[datetime, datetime]]
) -> Sql:
    ctes = [_weighted_cte(spec, customer, start, end, k=0, name="seg")]
    selects: list[Sql] = [
        (
            f"SELECT {KIND_OVERALL} AS kind, {null_groups(k)}NULL::timestamptz AS b, {held('seg')} AS value FROM seg",
            [],
        )
    ]
    if k:
        ctes.append(_weighted_cte(spec, customer, start, end, k=k, name="gseg"))
        groups = ", ".join(f"gseg.g{i}" for i in range(k))
        selects.append(
            (f"SELECT {KIND_GROUP}, {groups}, NULL::timestamptz, {held('gseg')} FROM gseg GROUP BY {groups}", [])
        )
    if buckets:
        overlap = "EXTRACT(EPOCH FROM (LEAST(seg.f, u.be) - GREATEST(seg.s, u.bs)))"
        selects.append(
            (
                f"SELECT {KIND_BUCKET}, {null_groups(k)}u.bs, sum(seg.value * {overlap}) FROM seg "
                "JOIN unnest(%s::timestamptz[], %s::timestamptz[]) AS u(bs, be) ON seg.s < u.be AND seg.f > u.bs "
                "GROUP BY u.bs",
                [[b for b, _ in buckets], [e for _, e in buckets]],
            )
        )
    sql = "WITH " + ", ".join(cte for cte, _ in ctes) + " " + " UNION ALL ".join(select for select, _ in selects)
    return sql, [p for _, params in ctes for p in params] + [p for _, params in selects for p in params]


def _scalar(spec: MeterSpec, customer: str, start: datetime, end: datetime) -> Sql:
    """A scalar subquery for the meter's ungrouped value (before finish)."""
    aggregation = spec.aggregation
    if aggregation in ROLLUP_AGGREGATIONS:
        parts, params = _rollup_parts(spec, customer, start, end, k=0, window=None)
        return f"(SELECT {ROLLUP_VALUE[aggregation]} FROM ({parts}) p)", params
    if aggregation == Aggregation.UNIQUE_COUNT:
        parts, params = _unique_parts(spec, customer, start, end, k=0, window=None)
        return f"(SELECT count(*) FROM ({parts}) p)", params
    if aggregation == Aggregation.LATEST:
        window, window_params = one_window(customer, start, end)
        latest, params = latest_sql(spec)
        return f"(SELECT {latest} FROM {window})", [*params, *window_params]
    if aggregation == Aggregation.WEIGHTED_SUM:
        cte, params = _weighted_cte(spec, customer, start, end, k=0, name="seg")
        return f"(WITH {cte} SELECT {held('seg')} FROM seg)", params
    raise ValueError(f"Unknown aggregation {aggregation!r}")  # pragma: no cover
