"""The SQL and the result rules that the single-customer usage reads (metering.selectors.usage)
and the bulk ones (metering.selectors.usage_bulk) share, so the two cannot drift: which events
of a meter count, the latest value, the time-weighted segments of a gauge, how a raw result
becomes a figure, and the range checks.

Every fragment reads one window from an alias `w` with columns `c` (the customer's external id),
`ws` and `we` (the half-open range [ws, we)). The bulk reads bind `w` to the rows of an
`unnest` of many windows (each window a lateral subquery); the single reads bind it to one row of
parameters (`one_window`), which PostgreSQL flattens into constants, so the plans are those of
a query written for that customer and range.

SQL text here is assembled from constants and the meter's property paths, which metering.meters
validates (MeterSpec.from_meter, and again in sql_path) before inlining them as text[] literals.
Every value travels as a parameter."""

# ruff: noqa: S608

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from core.errors import DomainError
from metering.meters import MeterDefinitionError, MeterSpec, sql_group, sql_match, sql_value
from metering.models import Aggregation, Meter

Sql = tuple[str, list[Any]]

TS = 'e."timestamp"'
# Byte order for the tie-break on equal timestamps: independent of the database collation.
EID = 'e.event_id COLLATE "C"'
EMPTY_EID = "''::text COLLATE \"C\""
ROLLUP_VALUE = {
    Aggregation.COUNT: "sum(p.n)",
    Aggregation.SUM: "sum(p.s)",
    Aggregation.MAX: "max(p.hi)",
    Aggregation.MIN: "min(p.lo)",
}
# The kinds of result rows: the overall value, a group's, a series bucket's.
KIND_OVERALL, KIND_GROUP, KIND_BUCKET = 0, 1, 2
IN_WINDOW = f"{TS} >= w.ws AND {TS} < w.we"
BEFORE_WINDOW = f"{TS} < w.ws"

_ZERO_WHEN_EMPTY = frozenset({Aggregation.COUNT, Aggregation.SUM, Aggregation.UNIQUE_COUNT, Aggregation.WEIGHTED_SUM})
_MICROSECONDS = Decimal(1_000_000)


# --- meters and ranges ------------------------------------------------------------------------


def spec_get(meter: Meter) -> MeterSpec:
    """The meter's spec; a stored meter whose paths fail validation (written around the services)
    is refused rather than put into SQL."""
    try:
        return MeterSpec.from_meter(meter)
    except MeterDefinitionError as exc:
        raise DomainError(
            f"Meter {meter.code!r} is invalid: {exc.message} Fix the meter.", code="invalid_meter"
        ) from None


def range_checked(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) in UTC; ValueError for naive instants, DomainError `invalid_range` if empty."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("usage ranges take aware datetimes")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start >= end:
        raise DomainError("The range is empty: 'from' must be before 'to'.", code="invalid_range")
    return start, end


def floor(instant: datetime, window: str | None) -> datetime:
    """The start of the UTC hour (or day, for window "day") holding `instant`."""
    instant = instant.replace(minute=0, second=0, microsecond=0)
    return instant.replace(hour=0) if window == "day" else instant


def ceil_hour(instant: datetime) -> datetime:
    hour = floor(instant, "hour")
    return hour if hour == instant else hour + timedelta(hours=1)


def hours_split(
    start: datetime, end: datetime
) -> tuple[tuple[datetime, datetime] | None, list[tuple[datetime, datetime]]]:
    """The whole hours of [start, end) (served by rollups) and the partial-hour edges (raw)."""
    first, last = ceil_hour(start), floor(end, "hour")
    if first >= last:
        return None, [(start, end)]
    edges = []
    if start < first:
        edges.append((start, first))
    if last < end:
        edges.append((last, end))
    return (first, last), edges


# --- SQL fragments ----------------------------------------------------------------------------


def one_window(customer: str, start: datetime, end: datetime) -> Sql:
    """`w` as one row of parameters, for the single-customer reads."""
    return "(SELECT %s::text AS c, %s::timestamptz AS ws, %s::timestamptz AS we) w", [customer, start, end]


def events_sql(spec: MeterSpec, *, when: str, with_value: bool = False, unique: bool = False) -> Sql:
    """`metering_event e CROSS JOIN LATERAL (value) v WHERE …`: the meter's matching events of the
    customer of the window `w` where `when` holds, each with its value `v.value` (NULL for
    unique_count, which reads the value as text). `with_value`: only events with a value."""
    match, params = sql_match(spec)
    value = sql_value(spec) if spec.value_path and not unique else "NULL::numeric"
    sql = (
        f"metering_event e CROSS JOIN LATERAL (SELECT {value} AS value) v "
        f"WHERE e.customer = w.c AND {match} AND ({when})"
    )
    if with_value:
        sql += " AND v.value IS NOT NULL"
    return sql, params


def group_columns(spec: MeterSpec, *, k: int) -> str:
    """`expr AS g0, …, ` for the first k group_by paths of an event `e`."""
    return "".join(f"{expr} AS g{i}, " for i, expr in enumerate(sql_group(spec)[:k]))


def rollup_group_columns(k: int) -> str:
    """`… AS g0, …, ` of a rollup row `r`: group_key is canonical JSON of the group texts; ""
    (a meter not yet rebuilt after group_by was added) reads as null groups rather than failing."""
    return "".join(f"(NULLIF(r.group_key, '')::jsonb ->> {i}) AS g{i}, " for i in range(k))


def event_columns(spec: MeterSpec, *, k: int) -> str:
    """g0.., ts, eid, value of an event `e` with value `v`."""
    return f"{group_columns(spec, k=k)}{TS} AS ts, {EID} AS eid, v.value AS value"


def columns(alias: str, k: int) -> str:
    return "".join(f"{alias}.g{i}, " for i in range(k))


def group_list(alias: str, k: int) -> str:
    return ", ".join(f"{alias}.g{i}" for i in range(k))


def null_groups(k: int) -> str:
    return "".join(f"NULL::text AS g{i}, " for i in range(k))


def latest_sql(spec: MeterSpec) -> Sql:
    """A scalar subquery: the value of the window's last event with a value, by timestamp, ties
    broken by event id (byte order). One backward index scan that stops at the first such event."""
    events, params = events_sql(spec, when=IN_WINDOW, with_value=True)
    return f"(SELECT v.value FROM {events} ORDER BY {TS} DESC, {EID} DESC LIMIT 1)", params


def latest_groups_sql(spec: MeterSpec, *, k: int) -> Sql:
    """Rows (kind, g0.., value): per group of the window, the value of its last event with a value."""
    events, params = events_sql(spec, when=IN_WINDOW, with_value=True)
    groups = group_list("q", k)
    sql = (
        f"SELECT DISTINCT ON ({groups}) {KIND_GROUP} AS kind, {groups}, q.value "
        f"FROM (SELECT {event_columns(spec, k=k)} FROM {events}) q ORDER BY {groups}, q.ts DESC, q.eid DESC"
    )
    return sql, params


def weighted_segments_sql(spec: MeterSpec, *, k: int) -> Sql:
    """Rows (g0.., s, f, value): each value of the gauge and the interval [s, f) it holds within
    the window. The points are the carry-in at `ws` (the latest event with a value strictly before
    it; per group with k) and the window's events with a value; f is the next point's time (per
    group) or `we`. Ties at one timestamp: the greatest event id holds, the others hold for zero
    seconds (metering.selectors.usage.usage_get states the semantics)."""
    before, before_params = events_sql(spec, when=BEFORE_WINDOW, with_value=True)
    inside, inside_params = events_sql(spec, when=IN_WINDOW, with_value=True)
    if k:
        groups = group_list("b", k)
        carry = (
            f"SELECT * FROM (SELECT DISTINCT ON ({groups}) {columns('b', k)}w.ws AS ts, {EMPTY_EID} AS eid, "
            f"b.value FROM (SELECT {event_columns(spec, k=k)} FROM {before}) b "
            f"ORDER BY {groups}, b.ts DESC, b.eid DESC) c"
        )
        partition = f"PARTITION BY {group_list('q', k)} "
    else:
        # One backward index scan from the start to the first event with a value.
        carry = f"(SELECT w.ws AS ts, {EMPTY_EID} AS eid, v.value FROM {before} ORDER BY {TS} DESC, {EID} DESC LIMIT 1)"
        partition = ""
    points = f"{carry} UNION ALL SELECT {event_columns(spec, k=k)} FROM {inside}"
    sql = (
        f"SELECT {columns('q', k)}q.ts AS s, COALESCE(lead(q.ts) OVER ({partition}ORDER BY q.ts, q.eid), w.we) AS f, "
        f"q.value FROM ({points}) q"
    )
    return sql, [*before_params, *inside_params]


def held(alias: str) -> str:
    """The sum of value times the seconds held over segments `alias` (weighted_segments_sql)."""
    return f"sum({alias}.value * EXTRACT(EPOCH FROM ({alias}.f - {alias}.s)))"


# --- results ----------------------------------------------------------------------------------


def seconds(start: datetime, end: datetime) -> Decimal:
    return Decimal((end - start) // timedelta(microseconds=1)) / _MICROSECONDS


def finish(aggregation: str, raw: Any, start: datetime, end: datetime) -> Decimal | None:
    """The figure of a raw result over [start, end): empty is 0 (count, sum, unique_count,
    weighted_sum) or None (max, min, latest); weighted_sum is divided by the range's seconds
    (34 significant digits); plain decimals."""
    if raw is None:
        return Decimal(0) if aggregation in _ZERO_WHEN_EMPTY else None
    value = Decimal(raw)
    if aggregation == Aggregation.WEIGHTED_SUM:
        with localcontext(prec=34):
            value = value / seconds(start, end)
    return plain(value)


def plain(value: Decimal) -> Decimal:
    """Without trailing zeros (rollups keep 12 decimal places) and without an exponent."""
    if value == 0:
        return Decimal(0)
    with localcontext(prec=200):  # normalize() rounds to the context's precision
        return Decimal(format(value.normalize(), "f"))


def group_sort_key(values: tuple) -> tuple:
    """Groups in order of their texts, a missing (None) value last."""
    return tuple((v is None, v or "") for v in values)
