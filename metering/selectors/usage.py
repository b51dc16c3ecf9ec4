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
bucket boundary. Every bucket is listed, empty ones with the empty value.
"""

# SQL text here is assembled from constants and the meter's property paths, which metering.meters
# validates (MeterSpec.from_meter, and again in sql_path) before inlining them as text[] literals.
# Every value travels as a parameter.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from django.db import connection

from core.errors import DomainError
from metering.meters import MeterDefinitionError, MeterSpec, sql_group, sql_match, sql_path, sql_value
from metering.models import Aggregation, Meter
from metering.models.meter import ROLLUP_AGGREGATIONS

WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# The longest range a series may cover: 744 hourly or 366 daily buckets.
WINDOW_MAX_SPAN = {"hour": timedelta(days=31), "day": timedelta(days=366)}
# Scalar subqueries per statement in usage_for_customer (keeps statements and plans small).
METERS_PER_STATEMENT = 100

_ZERO_WHEN_EMPTY = frozenset({Aggregation.COUNT, Aggregation.SUM, Aggregation.UNIQUE_COUNT, Aggregation.WEIGHTED_SUM})
# Aggregations whose series is computed bucket by bucket (keyed by the bucket's own start).
_PER_BUCKET = frozenset({Aggregation.LATEST, Aggregation.WEIGHTED_SUM})
_ROLLUP_VALUE = {
    Aggregation.COUNT: "sum(p.n)",
    Aggregation.SUM: "sum(p.s)",
    Aggregation.MAX: "max(p.hi)",
    Aggregation.MIN: "min(p.lo)",
}
_TS = 'e."timestamp"'
# Byte order for the tie-break on equal timestamps: independent of the database collation.
_EID = 'e.event_id COLLATE "C"'
_EMPTY_EID = "''::text COLLATE \"C\""
_MICROSECONDS = Decimal(1_000_000)
_KIND_OVERALL, _KIND_GROUP, _KIND_BUCKET = 0, 1, 2

Sql = tuple[str, list[Any]]


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
) -> UsageResult:
    """The usage of `meter` by `customer` over [start, end), optionally split by the meter's
    group_by dimensions (`group_by=True`) and into UTC hour/day buckets (`window`). One query.

    weighted_sum is the time-weighted average of a gauge. The running value at an instant is the
    value of the latest event at or before it (ties at one timestamp: the greatest event id holds,
    the others hold for zero seconds); at `start` it is the value of the latest event strictly
    before `start` (carry-in; 0 when there is none, so an unknown gauge counts as 0). Then

        weighted_sum = sum of value_i * seconds value_i held within [start, end) / (end - start) in seconds

    e.g. over 10:00-11:00 with a carry-in of 2 (an event at 09:30), 5 at 10:15 and 0 at 10:45:
    (2*900 + 5*1800 + 0*900) / 3600 = 3. The numerator is exact (numeric seconds to the
    microsecond); the division keeps 34 significant digits. Per group, the running value is the
    group's own (carry-in per group); per bucket, the bucket is the range.

    Raises DomainError `invalid_range` (start >= end), `invalid_window`, `window_too_large`.
    """
    start, end = _range_checked(start, end)
    if window is not None:
        if window not in WINDOWS:
            raise DomainError(f"window must be one of {', '.join(WINDOWS)}.", code="invalid_window")
        if end - start > WINDOW_MAX_SPAN[window]:
            raise DomainError(
                f"A series by {window} covers at most {WINDOW_MAX_SPAN[window].days} days; "
                "narrow from/to or use a coarser window.",
                code="window_too_large",
            )
    spec = _spec_get(meter)
    k = len(spec.group_paths) if group_by else 0
    buckets = _buckets(start, end, window) if window else []

    aggregation = spec.aggregation
    if aggregation in ROLLUP_AGGREGATIONS:
        parts, params = _rollup_parts(spec, customer, start, end, k=k, window=window)
        sql, params = _grouping_statement(parts, params, _ROLLUP_VALUE[aggregation], k=k, window=window)
    elif aggregation == Aggregation.UNIQUE_COUNT:
        parts, params = _unique_parts(spec, customer, start, end, k=k, window=window)
        sql, params = _grouping_statement(parts, params, "count(DISTINCT p.u)", k=k, window=window)
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
        if kind == _KIND_OVERALL:
            overall = value
        elif kind == _KIND_GROUP:
            by_group[values] = value
        else:
            by_bucket[bucket] = value

    paths = [".".join(path) for path in spec.group_paths]
    groups = [
        {"group": dict(zip(paths, values, strict=True)), "value": _finish(aggregation, by_group[values], start, end)}
        for values in sorted(by_group, key=_group_sort_key)
    ]
    series = []
    for bucket_start, bucket_end in buckets:
        # Grouping-set buckets are keyed by the aligned boundary, per-bucket ones by their start.
        key = bucket_start if aggregation in _PER_BUCKET else _floor(bucket_start, window)
        series.append(
            {"start": bucket_start, "value": _finish(aggregation, by_bucket.get(key), bucket_start, bucket_end)}
        )
    return UsageResult(
        meter=spec.code,
        customer=customer,
        start=start,
        end=end,
        value=_finish(aggregation, overall, start, end),
        groups=groups,
        series=series,
    )


def usage_for_customer(*, customer: str, start: datetime, end: datetime) -> dict[str, Decimal | None]:
    """Every meter's value for `customer` over [start, end): {meter code: value}, same semantics
    as usage_get. One query for the meters, then one statement per METERS_PER_STATEMENT meters
    (each meter a scalar subquery)."""
    start, end = _range_checked(start, end)
    specs = [_spec_get(meter) for meter in Meter.objects.order_by("code")]
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
            out[spec.code] = _finish(spec.aggregation, raw, start, end)
    return out


def _spec_get(meter: Meter) -> MeterSpec:
    """The meter's spec; a stored meter whose paths fail validation (written around the services)
    is refused rather than put into SQL."""
    try:
        return MeterSpec.from_meter(meter)
    except MeterDefinitionError as exc:
        raise DomainError(
            f"Meter {meter.code!r} is invalid: {exc.message} Fix the meter.", code="invalid_meter"
        ) from None


# --- time ---------------------------------------------------------------------------------------


def _range_checked(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("usage ranges take aware datetimes")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start >= end:
        raise DomainError("The range is empty: 'from' must be before 'to'.", code="invalid_range")
    return start, end


def _floor(instant: datetime, window: str | None) -> datetime:
    instant = instant.replace(minute=0, second=0, microsecond=0)
    return instant.replace(hour=0) if window == "day" else instant


def _ceil_hour(instant: datetime) -> datetime:
    floor = _floor(instant, "hour")
    return floor if floor == instant else floor + timedelta(hours=1)


def _buckets(start: datetime, end: datetime, window: str) -> list[tuple[datetime, datetime]]:
    step = WINDOWS[window]
    out = []
    bucket_start = start
    boundary = _floor(start, window) + step
    while bucket_start < end:
        bucket_end = min(boundary, end)
        out.append((bucket_start, bucket_end))
        bucket_start, boundary = bucket_end, boundary + step
    return out


def _split(start: datetime, end: datetime) -> tuple[tuple[datetime, datetime] | None, list[tuple[datetime, datetime]]]:
    """The whole hours of [start, end) (served by rollups) and the partial-hour edges (raw)."""
    first, last = _ceil_hour(start), _floor(end, "hour")
    if first >= last:
        return None, [(start, end)]
    edges = []
    if start < first:
        edges.append((start, first))
    if last < end:
        edges.append((last, end))
    return (first, last), edges


def _seconds(start: datetime, end: datetime) -> Decimal:
    return Decimal((end - start) // timedelta(microseconds=1)) / _MICROSECONDS


# --- SQL fragments ----------------------------------------------------------------------------


def _bucket_sql(column: str, window: str) -> str:
    return f"(date_trunc('{window}', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


def _raw_parts(
    spec: MeterSpec,
    customer: str,
    *,
    k: int = 0,
    window: str | None = None,
    spans: list[tuple[datetime, datetime]] | None = None,
    before: datetime | None = None,
    when_sql: str | None = None,
    with_value: bool = False,
    unique: bool = False,
) -> Sql:
    """SELECT g0.., b, ts, eid, value[, u] over the meter's matching events of `customer` in the
    union of `spans` (or strictly before `before`, or where the parameterless `when_sql` holds).
    `with_value`: only events with a value."""
    columns = [f"{expr} AS g{i}" for i, expr in enumerate(sql_group(spec)[:k])]
    if window:
        columns.append(f"{_bucket_sql(_TS, window)} AS b")
    columns += [f"{_TS} AS ts", f"{_EID} AS eid", "v.value AS value"]
    if unique:
        assert spec.value_path is not None
        columns.append(f"(e.properties #>> {sql_path(spec.value_path)}) AS u")
    match, params = sql_match(spec)
    when_params: list[Any] = []
    if when_sql is not None:
        when = when_sql
    elif before is not None:
        when = f"{_TS} < %s"
        when_params = [before]
    else:
        assert spans
        when = " OR ".join(f"({_TS} >= %s AND {_TS} < %s)" for _ in spans)
        when_params = [instant for span in spans for instant in span]
    value = sql_value(spec) if spec.value_path and not unique else "NULL::numeric"
    sql = (
        f"SELECT {', '.join(columns)} FROM metering_event e CROSS JOIN LATERAL (SELECT {value} AS value) v "
        f"WHERE e.customer = %s AND {match} AND ({when})"
    )
    if with_value:
        sql += " AND v.value IS NOT NULL"
    return sql, [customer, *params, *when_params]


def _unique_parts(spec: MeterSpec, customer: str, start: datetime, end: datetime, *, k: int, window: str | None) -> Sql:
    """SELECT DISTINCT g0.., b, u: a hash aggregate first (far fewer rows than events), so the
    count(DISTINCT) over grouping sets sorts only the distinct texts."""
    raw, params = _raw_parts(spec, customer, k=k, window=window, spans=[(start, end)], unique=True)
    columns = [f"q.g{i}" for i in range(k)] + (["q.b"] if window else []) + ["q.u"]
    return f"SELECT DISTINCT {', '.join(columns)} FROM ({raw}) q WHERE q.u IS NOT NULL", params


def _rollup_parts(spec: MeterSpec, customer: str, start: datetime, end: datetime, *, k: int, window: str | None) -> Sql:
    """SELECT g0.., b, n, s, lo, hi: rollup rows for the whole hours, raw events for the edges."""
    whole, edges = _split(start, end)
    branches: list[Sql] = []
    if whole is not None:
        # group_key is canonical JSON of the group texts; "" (a meter not yet rebuilt after
        # group_by was added) reads as null groups rather than failing.
        columns = [f"(NULLIF(r.group_key, '')::jsonb ->> {i}) AS g{i}" for i in range(k)]
        if window:
            columns.append(f"{_bucket_sql('r.hour', window)} AS b")
        columns += ["r.event_count AS n", "r.value_sum AS s", "r.value_min AS lo", "r.value_max AS hi"]
        branches.append(
            (
                f"SELECT {', '.join(columns)} FROM metering_rollup r "
                "WHERE r.customer = %s AND r.meter_id = %s AND r.hour >= %s AND r.hour < %s",
                [customer, spec.id, *whole],
            )
        )
    if edges:
        raw, params = _raw_parts(spec, customer, k=k, window=window, spans=edges)
        columns = [f"q.g{i}" for i in range(k)] + (["q.b"] if window else [])
        columns += ["1::bigint AS n", "q.value AS s", "q.value AS lo", "q.value AS hi"]
        branches.append((f"SELECT {', '.join(columns)} FROM ({raw}) q", params))
    return " UNION ALL ".join(sql for sql, _ in branches), [p for _, params in branches for p in params]


def _null_groups(k: int) -> str:
    return "".join(f"NULL::text AS g{i}, " for i in range(k))


def _grouping_statement(parts: str, params: list[Any], value: str, *, k: int, window: str | None) -> Sql:
    """One pass over `parts` (aliased p) for the overall value, the groups and the buckets:
    rows (kind, g0.., b, value)."""
    group_columns = [f"p.g{i}" for i in range(k)]
    sets = ["()"]
    kinds = []
    if window:
        sets.append("(p.b)")
        kinds.append(f"WHEN GROUPING(p.b) = 0 THEN {_KIND_BUCKET}")
    if k:
        sets.append("(" + ", ".join(group_columns) + ")")
        kinds.append(f"WHEN GROUPING(p.g0) = 0 THEN {_KIND_GROUP}")
    kind = f"CASE {' '.join(kinds)} ELSE {_KIND_OVERALL} END" if kinds else str(_KIND_OVERALL)
    columns = [f"{kind} AS kind", *group_columns, "p.b" if window else "NULL::timestamptz AS b", f"{value} AS value"]
    sql = f"SELECT {', '.join(columns)} FROM ({parts}) p GROUP BY GROUPING SETS ({', '.join(sets)})"
    return sql, params


def _latest_statement(
    spec: MeterSpec, customer: str, start: datetime, end: datetime, *, k: int, buckets: list[tuple[datetime, datetime]]
) -> Sql:
    overall, params = _scalar(spec, customer, start, end)
    selects: list[Sql] = [
        (f"SELECT {_KIND_OVERALL} AS kind, {_null_groups(k)}NULL::timestamptz AS b, {overall}", params)
    ]
    order = "p.ts DESC, p.eid DESC"
    if k:
        parts, params = _raw_parts(spec, customer, k=k, spans=[(start, end)], with_value=True)
        groups = ", ".join(f"p.g{i}" for i in range(k))
        selects.append(
            (
                f"SELECT * FROM (SELECT DISTINCT ON ({groups}) {_KIND_GROUP} AS kind, {groups}, "
                f"NULL::timestamptz AS b, p.value FROM ({parts}) p ORDER BY {groups}, {order}) pg",
                params,
            )
        )
    if buckets:
        # Per bucket, one backward index scan that stops at the first event with a value,
        # rather than sorting every event of the range.
        in_bucket = f"{_TS} >= w.bs AND {_TS} < w.be"
        parts, params = _raw_parts(spec, customer, when_sql=in_bucket, with_value=True)
        selects.append(
            (
                f"SELECT {_KIND_BUCKET} AS kind, {_null_groups(k)}w.bs AS b, "
                f"(SELECT p.value FROM ({parts}) p ORDER BY {order} LIMIT 1) AS value "
                "FROM unnest(%s::timestamptz[], %s::timestamptz[]) AS w(bs, be)",
                [*params, [b for b, _ in buckets], [e for _, e in buckets]],
            )
        )
    return " UNION ALL ".join(sql for sql, _ in selects), [p for _, params in selects for p in params]


def _weighted_ctes(spec: MeterSpec, customer: str, start: datetime, end: datetime, *, k: int, name: str) -> Sql:
    """CTEs `{name}_pts` (carry-in at `start`, then the events of the range with a value) and
    `{name}` (g0.., s, f, value): each value and the interval [s, f) it holds within the range,
    f being the next point's time (per group when k) or `end`."""
    groups = [f"p.g{i}" for i in range(k)]
    group_list = "".join(f"{g}, " for g in groups)
    before, before_params = _raw_parts(spec, customer, k=k, before=start, with_value=True)
    if k:
        carry = (
            f"SELECT * FROM (SELECT DISTINCT ON ({', '.join(groups)}) {group_list}%s::timestamptz AS ts, "
            f"{_EMPTY_EID} AS eid, p.value FROM ({before}) p ORDER BY {group_list}p.ts DESC, p.eid DESC) c"
        )
    else:
        carry = (
            f"(SELECT %s::timestamptz AS ts, {_EMPTY_EID} AS eid, p.value FROM ({before}) p "
            "ORDER BY p.ts DESC, p.eid DESC LIMIT 1)"
        )
    inside, inside_params = _raw_parts(spec, customer, k=k, spans=[(start, end)], with_value=True)
    partition = f"PARTITION BY {', '.join(g.replace('p.', 'q.') for g in groups)} " if k else ""
    q_groups = group_list.replace("p.", "q.")
    sql = (
        f"{name}_pts AS ({carry} UNION ALL SELECT {group_list}p.ts, p.eid, p.value FROM ({inside}) p), "
        f"{name} AS (SELECT {q_groups}q.ts AS s, "
        f"COALESCE(lead(q.ts) OVER ({partition}ORDER BY q.ts, q.eid), %s::timestamptz) AS f, q.value "
        f"FROM {name}_pts q)"
    )
    return sql, [start, *before_params, *inside_params, end]


def _held(name: str) -> str:
    return f"sum({name}.value * EXTRACT(EPOCH FROM ({name}.f - {name}.s)))"


def _weighted_statement(
    spec: MeterSpec, customer: str, start: datetime, end: datetime, *, k: int, buckets: list[tuple[datetime, datetime]]
) -> Sql:
    ctes = [_weighted_ctes(spec, customer, start, end, k=0, name="seg")]
    selects: list[Sql] = [
        (
            f"SELECT {_KIND_OVERALL} AS kind, {_null_groups(k)}NULL::timestamptz AS b, "
            f"{_held('seg')} AS value FROM seg",
            [],
        )
    ]
    if k:
        ctes.append(_weighted_ctes(spec, customer, start, end, k=k, name="gseg"))
        groups = ", ".join(f"gseg.g{i}" for i in range(k))
        selects.append(
            (f"SELECT {_KIND_GROUP}, {groups}, NULL::timestamptz, {_held('gseg')} FROM gseg GROUP BY {groups}", [])
        )
    if buckets:
        overlap = "EXTRACT(EPOCH FROM (LEAST(seg.f, w.be) - GREATEST(seg.s, w.bs)))"
        selects.append(
            (
                f"SELECT {_KIND_BUCKET}, {_null_groups(k)}w.bs, sum(seg.value * {overlap}) FROM seg "
                "JOIN unnest(%s::timestamptz[], %s::timestamptz[]) AS w(bs, be) ON seg.s < w.be AND seg.f > w.bs "
                "GROUP BY w.bs",
                [[b for b, _ in buckets], [e for _, e in buckets]],
            )
        )
    sql = "WITH " + ", ".join(cte for cte, _ in ctes) + " " + " UNION ALL ".join(select for select, _ in selects)
    return sql, [p for _, params in ctes for p in params] + [p for _, params in selects for p in params]


def _scalar(spec: MeterSpec, customer: str, start: datetime, end: datetime) -> Sql:
    """A scalar subquery for the meter's ungrouped value (before _finish)."""
    aggregation = spec.aggregation
    if aggregation in ROLLUP_AGGREGATIONS:
        parts, params = _rollup_parts(spec, customer, start, end, k=0, window=None)
        return f"(SELECT {_ROLLUP_VALUE[aggregation]} FROM ({parts}) p)", params
    if aggregation == Aggregation.UNIQUE_COUNT:
        parts, params = _unique_parts(spec, customer, start, end, k=0, window=None)
        return f"(SELECT count(*) FROM ({parts}) p)", params
    if aggregation == Aggregation.LATEST:
        parts, params = _raw_parts(spec, customer, spans=[(start, end)], with_value=True)
        return f"(SELECT p.value FROM ({parts}) p ORDER BY p.ts DESC, p.eid DESC LIMIT 1)", params
    if aggregation == Aggregation.WEIGHTED_SUM:
        ctes, params = _weighted_ctes(spec, customer, start, end, k=0, name="seg")
        return f"(WITH {ctes} SELECT {_held('seg')} FROM seg)", params
    raise ValueError(f"Unknown aggregation {aggregation!r}")  # pragma: no cover


# --- results ----------------------------------------------------------------------------------


def _finish(aggregation: str, raw: Any, start: datetime, end: datetime) -> Decimal | None:
    if raw is None:
        return Decimal(0) if aggregation in _ZERO_WHEN_EMPTY else None
    value = Decimal(raw)
    if aggregation == Aggregation.WEIGHTED_SUM:
        with localcontext(prec=34):
            value = value / _seconds(start, end)
    return _plain(value)


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros (rollups keep 12 decimal places) and without an exponent."""
    if value == 0:
        return Decimal(0)
    with localcontext(prec=200):  # normalize() rounds to the context's precision
        return Decimal(format(value.normalize(), "f"))


def _group_sort_key(values: tuple) -> tuple:
    return tuple((v is None, v or "") for v in values)
