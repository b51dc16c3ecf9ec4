"""Hourly rollups in SQL: maintained by the drainer, rebuilt from raw events, checked against them.

One statement builder serves all three, so the drainer (aggregating the events of one drain from
its staging table), the rebuild and the check (aggregating the raw event table) cannot disagree
on matching, values, hours or group keys: those come from metering.meters' SQL expressions.
Rebuild and check look only at the span raw events are still kept for; older rollups stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction

from metering.meters import MeterSpec, sql_group_key, sql_match, sql_value
from metering.models import Meter, Rollup
from metering.services.partitions import partitions_oldest_start

HOUR_SQL = "date_trunc('hour', e.\"timestamp\" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
_UPSERT_SUFFIX = """
ON CONFLICT (meter_id, customer, hour, md5(group_key)) DO UPDATE SET
    event_count = metering_rollup.event_count + EXCLUDED.event_count,
    value_sum = CASE WHEN metering_rollup.value_sum IS NULL THEN EXCLUDED.value_sum
                     WHEN EXCLUDED.value_sum IS NULL THEN metering_rollup.value_sum
                     ELSE metering_rollup.value_sum + EXCLUDED.value_sum END,
    value_min = LEAST(metering_rollup.value_min, EXCLUDED.value_min),
    value_max = GREATEST(metering_rollup.value_max, EXCLUDED.value_max)
"""


def rollup_select(spec: MeterSpec, *, source: str, since: datetime | None = None) -> tuple[str, list]:
    """SELECT meter_id, customer, hour, group_key, count, sum, min, max over `source` (alias e),
    ordered by key (a fixed row-lock order when upserted by concurrent drainers)."""
    where, params = sql_match(spec)
    value = sql_value(spec) if spec.value_path else "NULL::numeric"
    if since is not None:
        where += ' AND e."timestamp" >= %s'
        params.append(since)
    # Paths in the SQL are validated (metering.meters.sql_path); values are parameters.
    sql = (
        f"SELECT %s::bigint, e.customer, {HOUR_SQL} AS h, {sql_group_key(spec)} AS g, "  # noqa: S608
        f"count(*), sum(v.value), min(v.value), max(v.value) "
        f"FROM {source} e CROSS JOIN LATERAL (SELECT {value} AS value) v WHERE {where} "
        f"GROUP BY 2, 3, 4 ORDER BY 2, 3, 4"
    )
    return sql, [spec.id, *params]


def rollup_upsert_from(cursor, spec: MeterSpec, *, source: str, since: datetime | None = None) -> int:
    select, params = rollup_select(spec, source=source, since=since)
    cursor.execute(
        "INSERT INTO metering_rollup (meter_id, customer, hour, group_key, event_count, value_sum, value_min, "
        f"value_max) {select} {_UPSERT_SUFFIX}",
        params,
    )
    return cursor.rowcount


def rollups_rebuild(*, meter_ids: list[int] | None = None) -> int:
    """Recompute the rollups of the given meters (all meters if None) from raw events. Waits for
    drains in flight (see metering.services.drain). Returns the number of rollup rows written."""
    floor = partitions_oldest_start()
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE metering_rollup IN SHARE ROW EXCLUSIVE MODE")
        meters = Meter.objects.all() if meter_ids is None else Meter.objects.filter(id__in=meter_ids)
        for meter in meters.order_by("id"):
            stale = Rollup.objects.filter(meter=meter)
            if floor is not None:
                stale = stale.filter(hour__gte=floor)
            stale.delete()
            if floor is not None:
                written += rollup_upsert_from(cursor, MeterSpec.from_meter(meter), source="metering_event", since=floor)
    return written


@dataclass(frozen=True)
class RollupMismatch:
    meter: str
    customer: str
    hour: datetime
    group_key: str
    stored: tuple
    fresh: tuple


def rollups_check() -> list[RollupMismatch]:
    """Compare stored rollups with a fresh aggregation of the raw events, for every meter (the
    drainer keeps rollups for all; count, sum, min and max are served from them)."""
    floor = partitions_oldest_start()
    if floor is None:
        return []
    mismatches: list[RollupMismatch] = []
    for meter in Meter.objects.order_by("id"):
        select, params = rollup_select(MeterSpec.from_meter(meter), source="metering_event", since=floor)
        with connection.cursor() as cursor:
            cursor.execute(select, params)
            fresh = {(r[1], r[2], r[3]): (r[4], _norm(r[5]), _norm(r[6]), _norm(r[7])) for r in cursor.fetchall()}
        stored = {
            (r.customer, r.hour, r.group_key): (
                r.event_count,
                _norm(r.value_sum),
                _norm(r.value_min),
                _norm(r.value_max),
            )
            for r in Rollup.objects.filter(meter=meter, hour__gte=floor)
        }
        for key in sorted(set(stored) | set(fresh)):
            if stored.get(key, ()) != fresh.get(key, ()):
                mismatches.append(RollupMismatch(meter.code, *key, stored.get(key, ()), fresh.get(key, ())))
    return mismatches


def _norm(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.normalize()
