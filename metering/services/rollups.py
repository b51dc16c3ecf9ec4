"""Rebuilding hourly rollups from raw events, and checking that they agree.

Rollups are derived data: the raw events are the record. Both functions aggregate raw events in
SQL with the meter's filters (metering.meters), group in Python into the same keys the drainer
writes, and look only at the span raw events are still kept for (older rollups stay as they are).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import msgspec
from django.db import connection, transaction

from metering.meters import MeterSpec, sql_group, sql_match, sql_value
from metering.models import Meter, Rollup
from metering.services.drain import _Agg, rollups_upsert


def raw_floor() -> datetime | None:
    """The start of the oldest partition holding raw events (None: no partition yet)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(substring(c.relname from 'metering_event_p(.*)')) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "JOIN pg_namespace n ON n.oid = p.relnamespace "
            "WHERE p.relname = 'metering_event' AND n.nspname = current_schema()"
        )
        oldest = cursor.fetchone()[0]
    if oldest is None:
        return None
    from datetime import UTC

    return datetime.strptime(oldest, "%Y_%m").replace(tzinfo=UTC)


def _fresh_aggregates(spec: MeterSpec, floor: datetime) -> dict[tuple, _Agg]:
    where, params = sql_match(spec)
    groups = sql_group(spec)
    value = sql_value(spec) if spec.value_path else "NULL::numeric"
    select_groups = "".join(f", {g}" for g in groups)
    # Paths in the SQL are validated dot paths (metering.meters.sql_path); values are parameters.
    hour = "date_trunc('hour', e.\"timestamp\" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    sql = (
        f"SELECT e.customer, {hour}{select_groups}, "  # noqa: S608
        f"count(*), sum(v.value), min(v.value), max(v.value) "
        f"FROM metering_event e CROSS JOIN LATERAL (SELECT {value} AS value) v "
        f'WHERE {where} AND e."timestamp" >= %s '
        f"GROUP BY 1, 2{''.join(f', {i + 3}' for i in range(len(groups)))}"
    )
    out: dict[tuple, _Agg] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, floor])
        for row in cursor.fetchall():
            customer, hour = row[0], row[1]
            group_key = msgspec.json.encode(list(row[2 : 2 + len(groups)])).decode() if groups else ""
            count, total, low, high = row[2 + len(groups) :]
            out[(spec.id, customer, hour, group_key)] = _Agg(count=count, total=total, low=low, high=high)
    return out


def rollups_rebuild(*, meter_ids: list[int] | None = None) -> int:
    """Recompute the rollups of the given meters (all meters if None) from raw events. Waits for
    drains in flight (see metering.services.drain). Returns the number of rollup rows written."""
    floor = raw_floor()
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE metering_rollup IN SHARE ROW EXCLUSIVE MODE")
        meters = Meter.objects.all() if meter_ids is None else Meter.objects.filter(id__in=meter_ids)
        for meter in meters:
            stale = Rollup.objects.filter(meter=meter)
            if floor is not None:
                stale = stale.filter(hour__gte=floor)
            stale.delete()
            if floor is None:
                continue
            aggs = _fresh_aggregates(MeterSpec.from_meter(meter), floor)
            rollups_upsert(cursor, aggs)
            written += len(aggs)
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
    """Compare stored rollups with a fresh aggregation of raw events. Every meter has rollups
    (the drainer keeps them for all; count, sum, min and max are served from them)."""
    floor = raw_floor()
    if floor is None:
        return []
    mismatches: list[RollupMismatch] = []
    for meter in Meter.objects.all():
        fresh = _fresh_aggregates(MeterSpec.from_meter(meter), floor)
        stored: dict[tuple, tuple] = defaultdict(tuple)
        for r in Rollup.objects.filter(meter=meter, hour__gte=floor):
            stored[(meter.id, r.customer, r.hour, r.group_key)] = (
                r.event_count,
                _norm(r.value_sum),
                _norm(r.value_min),
                _norm(r.value_max),
            )
        for key in set(stored) | set(fresh):
            agg = fresh.get(key)
            fresh_tuple = (agg.count, _norm(agg.total), _norm(agg.low), _norm(agg.high)) if agg else ()
            if stored.get(key, ()) != fresh_tuple:
                mismatches.append(RollupMismatch(meter.code, key[1], key[2], key[3], stored.get(key, ()), fresh_tuple))
    return mismatches


def _norm(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.normalize()
