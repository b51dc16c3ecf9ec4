"""Moving landed batches into the event store, exactly once.

One transaction per drain: lock a run of landing rows (SKIP LOCKED, so drainers share the work),
COPY their unique events into a temporary staging table, record the ids in the idempotency ledger
(ON CONFLICT DO NOTHING) and drop from the stage what the ledger already had, insert the rest into
the partitioned table, add them to the hourly rollups, delete the landing rows, commit. A crash
anywhere rolls all of it back and the rows are drained again: nothing lost, nothing counted twice.

Meter definitions are read inside the transaction after taking ROW EXCLUSIVE on the rollup table;
a rollup rebuild (a new or changed meter) takes SHARE ROW EXCLUSIVE, so it waits for drains in
flight and the drains after it see the new meter: no event escapes a new meter's backfill.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from django.db import DataError, IntegrityError, connection, transaction

from metering.faults import fault_point
from metering.ingest import decode_landing
from metering.meters import MeterSpec
from metering.models import Meter
from metering.services.partitions import partitions_ensure_for
from metering.services.rollups import rollup_upsert_from

# Each drain stages its unique events in a temporary table (no WAL), then lets PostgreSQL do the
# rest in C: ledger insert and duplicate removal, the insert into the partitioned table, and one
# grouped rollup upsert per meter (the same SQL as the rebuild: metering.services.rollups).
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS metering_drain_stage (event_id varchar(255), customer varchar(255), "
    'event_type varchar(255), "timestamp" timestamptz, properties jsonb, received_at timestamptz) '
    "ON COMMIT DELETE ROWS"
)
_STAGE_COPY = (
    'COPY metering_drain_stage (event_id, customer, event_type, "timestamp", properties, received_at) FROM STDIN'
)
_LEDGER = (
    "WITH fresh AS (INSERT INTO metering_event_id (event_id, received_at) "
    "SELECT event_id, received_at FROM metering_drain_stage ON CONFLICT DO NOTHING RETURNING event_id) "
    "DELETE FROM metering_drain_stage s WHERE NOT EXISTS (SELECT 1 FROM fresh WHERE fresh.event_id = s.event_id)"
)


@dataclass
class DrainResult:
    batches: int = 0
    events: int = 0  # events in the drained batches
    inserted: int = 0  # new events stored
    duplicates: int = 0
    customers: set[str] = field(default_factory=set)
    oldest_received_at: datetime | None = None
    seconds: float = 0.0


def meter_specs_load() -> list[MeterSpec]:
    return [MeterSpec.from_meter(meter) for meter in Meter.objects.order_by("id")]


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
        cursor.execute(_STAGE)
        # Normally empty (ON COMMIT DELETE ROWS); not when a drain runs inside an outer
        # transaction (tests, --once in a caller's transaction), where no commit intervenes.
        cursor.execute("DELETE FROM metering_drain_stage")
        with cursor.cursor.copy(_STAGE_COPY) as copy:
            for event, received_at in unique.values():
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
        cursor.execute(_LEDGER)  # the stage keeps only events never seen before
        result.inserted = len(unique) - cursor.rowcount
        result.duplicates = result.events - result.inserted
        fault_point("drain.after_ledger")

        if result.inserted:
            cursor.execute(
                "SELECT DISTINCT date_trunc('month', \"timestamp\" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' "
                "FROM metering_drain_stage"
            )
            partitions_ensure_for(cursor, {row[0] for row in cursor.fetchall()})
            cursor.execute(
                'INSERT INTO metering_event (event_id, customer, event_type, "timestamp", properties, received_at) '
                'SELECT event_id, customer, event_type, "timestamp", properties, received_at FROM metering_drain_stage'
            )
            fault_point("drain.after_copy")
            cursor.execute("SELECT DISTINCT event_type FROM metering_drain_stage")
            present = {row[0] for row in cursor.fetchall()}
            for spec in meter_specs_load():  # in id order: a fixed lock order across drainers
                if spec.event_type in present:
                    rollup_upsert_from(cursor, spec, source="metering_drain_stage")
            cursor.execute("SELECT DISTINCT customer FROM metering_drain_stage")
            result.customers = {row[0] for row in cursor.fetchall()}
            fault_point("drain.after_rollups")
        cursor.execute("DELETE FROM metering_landing WHERE id = ANY(%s)", [[row[0] for row in rows]])
        fault_point("drain.before_commit")


def drain_lag_seconds(result: DrainResult) -> float:
    if result.oldest_received_at is None:
        return 0.0
    return (datetime.now(UTC) - result.oldest_received_at).total_seconds()
