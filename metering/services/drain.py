"""Moving landed batches into the event store, exactly once.

One transaction per drain: lock a run of landing rows (SKIP LOCKED, so drainers share the work),
record their event ids in the idempotency ledger (ON CONFLICT DO NOTHING RETURNING tells which are
new), COPY only the new events into the partitioned table, add them to the hourly rollups, delete
the landing rows, commit. A crash anywhere rolls all of it back and the rows are drained again:
nothing lost, nothing counted twice.

Meter definitions are read inside the transaction after taking ROW EXCLUSIVE on the rollup table;
a rollup rebuild (a new or changed meter) takes SHARE ROW EXCLUSIVE, so it waits for drains in
flight and the drains after it see the new meter: no event escapes a new meter's backfill.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import psycopg
from django.db import DataError, IntegrityError, connection, transaction

from metering.faults import fault_point
from metering.ingest import decode_landing
from metering.meters import MeterSpec, group_key_of, matches, value_of
from metering.models import Meter
from metering.services.partitions import partitions_ensure_for

_props_decoder = msgspec.json.Decoder(float_hook=Decimal)

_COPY = 'COPY metering_event (event_id, customer, event_type, "timestamp", properties, received_at) FROM STDIN'
# Bulk rows travel as one JSON text parameter (msgspec encodes it in C; PostgreSQL parses it):
# psycopg dumps large Python arrays element by element, which cost more than the statements.
# ORDER BY gives every drainer the same row-lock order on rollups, so they wait, never deadlock.
_ROLLUP_UPSERT = """
INSERT INTO metering_rollup (meter_id, customer, hour, group_key, event_count, value_sum, value_min, value_max)
SELECT * FROM json_to_recordset(%s::json) AS r(m bigint, c text, h timestamptz, g text, n bigint,
                                                s numeric, lo numeric, hi numeric)
ORDER BY 1, 2, 3, 4
ON CONFLICT (meter_id, customer, hour, group_key) DO UPDATE SET
    event_count = metering_rollup.event_count + EXCLUDED.event_count,
    value_sum = CASE WHEN metering_rollup.value_sum IS NULL THEN EXCLUDED.value_sum
                     WHEN EXCLUDED.value_sum IS NULL THEN metering_rollup.value_sum
                     ELSE metering_rollup.value_sum + EXCLUDED.value_sum END,
    value_min = LEAST(metering_rollup.value_min, EXCLUDED.value_min),
    value_max = GREATEST(metering_rollup.value_max, EXCLUDED.value_max)
"""


@dataclass
class DrainResult:
    batches: int = 0
    events: int = 0  # events in the drained batches
    inserted: int = 0  # new events stored
    duplicates: int = 0
    customers: set[str] = field(default_factory=set)
    oldest_received_at: datetime | None = None
    seconds: float = 0.0


@dataclass
class _Agg:
    count: int = 0
    total: Decimal | None = None
    low: Decimal | None = None
    high: Decimal | None = None

    def add(self, value: Decimal | None) -> None:
        self.count += 1
        if value is not None:
            self.total = value if self.total is None else self.total + value
            self.low = value if self.low is None or value < self.low else self.low
            self.high = value if self.high is None or value > self.high else self.high


def meter_specs_load() -> dict[str, list[MeterSpec]]:
    by_type: dict[str, list[MeterSpec]] = defaultdict(list)
    for meter in Meter.objects.all():
        by_type[meter.event_type].append(MeterSpec.from_meter(meter))
    return by_type


def rollup_rows_for(events, specs_by_type: dict[str, list[MeterSpec]]) -> dict[tuple, _Agg]:
    """(meter id, customer, hour, group key) → aggregate, for events given as
    (customer, type, timestamp, raw properties)."""
    aggs: dict[tuple, _Agg] = defaultdict(_Agg)
    for customer, event_type, timestamp, raw in events:
        specs = specs_by_type.get(event_type)
        if not specs:
            continue
        properties = _props_decoder.decode(raw)
        hour = timestamp.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        for spec in specs:
            if matches(spec, event_type, properties):
                aggs[(spec.id, customer, hour, group_key_of(spec, properties))].add(value_of(spec, properties))
    return aggs


def rollups_upsert(cursor, aggs: dict[tuple, _Agg]) -> None:
    if not aggs:
        return
    rows = [
        {
            "m": meter_id,
            "c": customer,
            "h": hour,
            "g": group_key,
            "n": agg.count,
            "s": agg.total,
            "lo": agg.low,
            "hi": agg.high,
        }
        for (meter_id, customer, hour, group_key), agg in aggs.items()
    ]
    cursor.execute(_ROLLUP_UPSERT, [msgspec.json.encode(rows).decode()])


class BatchStoreError(Exception):
    """The database refused to store these landing batches (a data error: retrying the same rows
    will fail the same way). The drain's transaction was rolled back."""

    def __init__(self, batch_ids: list[int], cause: Exception):
        super().__init__(f"batches {batch_ids}: {cause}")
        self.batch_ids = batch_ids
        self.cause = cause


def landing_quarantine(*, batch_id: int, error: str) -> bool:
    """Move one landing batch to the dead-letter table, in its own transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "WITH dead AS (DELETE FROM metering_landing WHERE id = %s RETURNING id, received_at, event_count, payload) "
            "INSERT INTO metering_landing_dead (batch_id, received_at, event_count, payload, error, failed_at) "
            "SELECT id, received_at, event_count, payload, %s, now() FROM dead RETURNING batch_id",
            [batch_id, error[:4000]],
        )
        return cursor.fetchone() is not None


def drain_once(*, max_events: int, max_batches: int = 200) -> DrainResult:
    """Drain landed batches of the current tenant schema (one transaction). Returns what it did;
    `batches == 0` means nothing was waiting (or everything was locked by other drainers)."""
    started = time.monotonic()
    result = DrainResult()
    batch_ids: list[int] = []
    try:
        _drain(result, batch_ids, max_events=max_events, max_batches=max_batches)
    except (DataError, IntegrityError, psycopg.DataError, psycopg.IntegrityError) as exc:
        # COPY runs on the raw psycopg cursor, whose errors Django does not translate.
        raise BatchStoreError(batch_ids, exc) from exc
    if result.batches:
        fault_point("drain.after_commit")
    result.seconds = time.monotonic() - started
    return result


def _drain(result: DrainResult, batch_ids: list[int], *, max_events: int, max_batches: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE metering_rollup IN ROW EXCLUSIVE MODE")
        # Take batches in landing order until max_events (at least one batch).
        cursor.execute(
            "SELECT id, received_at, event_count, payload FROM metering_landing "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            [max_batches],
        )
        rows = []
        for row in cursor.fetchall():
            if rows and result.events + row[2] > max_events:
                break
            rows.append(row)
            result.events += row[2]
        if not rows:
            return
        batch_ids.extend(row[0] for row in rows)
        result.batches = len(rows)
        result.oldest_received_at = min(row[1] for row in rows)

        # First occurrence wins, in landing order; the ledger decides across batches.
        unique: dict[str, tuple] = {}
        for _, received_at, _, payload in rows:
            for event in decode_landing(bytes(payload)):
                if event.id not in unique:
                    unique[event.id] = (event, received_at)
        ledger = [{"i": event_id, "r": received} for event_id, (_, received) in unique.items()]
        cursor.execute(
            "INSERT INTO metering_event_id (event_id, received_at) "
            "SELECT i, r FROM json_to_recordset(%s::json) AS x(i text, r timestamptz) "
            "ON CONFLICT DO NOTHING RETURNING event_id",
            [msgspec.json.encode(ledger).decode()],
        )
        fresh_ids = {row[0] for row in cursor.fetchall()}
        fault_point("drain.after_ledger")
        fresh = [unique[event_id] for event_id in fresh_ids]
        result.inserted = len(fresh)
        result.duplicates = result.events - result.inserted

        if fresh:
            partitions_ensure_for(cursor, {event.timestamp for event, _ in fresh})
            with cursor.cursor.copy(_COPY) as copy:
                for event, received_at in fresh:
                    copy.write_row(
                        (
                            event.id,
                            event.customer,
                            event.type,
                            event.timestamp,
                            bytes(event.properties).decode(),
                            received_at,
                        )
                    )
            fault_point("drain.after_copy")
            specs = meter_specs_load()
            aggs = rollup_rows_for(
                ((e.customer, e.type, e.timestamp, e.properties) for e, _ in fresh if e.type in specs), specs
            )
            rollups_upsert(cursor, aggs)
            result.customers = {event.customer for event, _ in fresh}
            fault_point("drain.after_rollups")
        cursor.execute("DELETE FROM metering_landing WHERE id = ANY(%s)", [[row[0] for row in rows]])
        fault_point("drain.before_commit")


def drain_lag_seconds(result: DrainResult) -> float:
    if result.oldest_received_at is None:
        return 0.0
    return (datetime.now(UTC) - result.oldest_received_at).total_seconds()
