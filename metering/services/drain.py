"""Moving landed batches into the event store, exactly once.

One transaction per drain: lock a run of landing rows (SKIP LOCKED, so drainers share the work),
COPY their unique events into a temporary staging table, record the ids in the idempotency ledger
(ON CONFLICT DO NOTHING) and drop from the stage what the ledger already had, insert the rest into
the partitioned table, add them to the hourly rollups and the per-customer tally, delete the
landing rows, commit. A crash anywhere rolls all of it back and the rows are drained again:
nothing lost, nothing counted twice.

Meter definitions are read inside the transaction after taking ROW EXCLUSIVE on the rollup table;
a rollup rebuild (a new or changed meter) takes SHARE ROW EXCLUSIVE, so it waits for drains in
flight and the drains after it see the new meter: no event escapes a new meter's backfill.

Whatever the landed bytes hold, a drain either commits or raises one of two kinds of error: a
transient database error (connection lost, deadlock, shutdown, out of resources: retry the same
rows later) or BatchStoreError (anything else: the rows themselves cannot be stored, whether
PostgreSQL refused them or Python could not decode them). The drainer narrows a BatchStoreError
down to the batches that fail alone and moves those to the dead-letter table
(metering.management.commands.metering_drain).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from django.db import InterfaceError, OperationalError, connection, transaction

from core.faults import fault_point
from metering.ingest import decode_landing
from metering.meters import MeterDefinitionError, MeterSpec
from metering.models import Meter
from metering.services.partitions import partitions_ensure_for
from metering.services.rollups import rollup_upsert_from

logger = logging.getLogger("metering.drain")

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

_CUSTOMERS = (
    "INSERT INTO metering_customer (customer, event_count, first_seen, last_seen) "
    "SELECT customer, count(*), min(received_at), max(received_at) FROM metering_drain_stage "
    "GROUP BY customer ORDER BY customer "
    "ON CONFLICT (customer) DO UPDATE SET event_count = metering_customer.event_count + EXCLUDED.event_count, "
    "first_seen = LEAST(metering_customer.first_seen, EXCLUDED.first_seen), "
    "last_seen = GREATEST(metering_customer.last_seen, EXCLUDED.last_seen) "
    "RETURNING customer"
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
    specs = []
    for meter in Meter.objects.order_by("id"):
        try:
            specs.append(MeterSpec.from_meter(meter))
        except MeterDefinitionError:
            # A definition stored before a rule existed: its rollups miss these events (a fixed
            # meter is rebuilt from raw events), the tenant's other meters keep counting. Failing
            # the drain would send every batch to dead letters instead.
            logger.error("meter skipped: its definition is invalid", extra={"meter": meter.code}, exc_info=True)
    return specs


class BatchStoreError(Exception):
    """These landing batches could not be drained, for a reason in the rows rather than in the
    database's state (a data error, a payload that does not decode, a value out of any range):
    retrying the same rows fails the same way. The drain's transaction was rolled back."""

    def __init__(self, batch_ids: list[int], cause: Exception):
        super().__init__(f"batches {batch_ids}: {cause}")
        self.batch_ids = batch_ids
        self.cause = cause


# SQLSTATE classes that mean "not now" rather than "not these rows": connection exceptions,
# transaction rollback (deadlock, serialization failure), insufficient resources, object not in
# prerequisite state (lock not available), operator intervention (shutdown, statement timeout),
# system error (I/O). Everything else, e.g. 22 data exception, 23 integrity, 54 program limit
# exceeded (an index entry too large), XX internal, is blamed on the batches.
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "55", "57", "58"})


def drain_error_is_transient(exc: BaseException) -> bool:
    if isinstance(exc, InterfaceError | psycopg.InterfaceError):
        return True
    if isinstance(exc, OperationalError | psycopg.OperationalError):
        # Django wraps psycopg's error (its cause); COPY on the raw cursor raises psycopg's own.
        error = exc if isinstance(exc, psycopg.Error) else exc.__cause__
        sqlstate = getattr(error, "sqlstate", None)
        return sqlstate is None or sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES
    return False


def landing_error_describe(exc: BaseException) -> str:
    # str(), not repr(): a UnicodeDecodeError's repr carries the whole payload.
    return f"{type(exc).__name__}: {exc}"


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


def drain_once(*, max_events: int, max_batches: int = 200, batch_ids: Sequence[int] | None = None) -> DrainResult:
    """Drain landed batches of the current tenant schema (one transaction). Returns what it did;
    `batches == 0` means nothing was waiting (or everything was locked by other drainers).
    `batch_ids`: exactly these batches, whatever their size (those still waiting and not locked
    by another drainer); that is how a failed drain is narrowed down.

    Raises BatchStoreError for any failure that is not a transient database error (see the
    module docstring); transient errors propagate as they are."""
    started = time.monotonic()
    result = DrainResult()
    taken: list[int] = []
    try:
        _drain(result, taken, max_events=max_events, max_batches=max_batches, only=batch_ids)
    except Exception as exc:
        if drain_error_is_transient(exc):
            raise
        raise BatchStoreError(taken, exc) from exc
    if result.batches:
        fault_point("drain.after_commit")
    result.seconds = time.monotonic() - started
    return result


def _drain(
    result: DrainResult, batch_ids: list[int], *, max_events: int, max_batches: int, only: Sequence[int] | None
) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE metering_rollup IN ROW EXCLUSIVE MODE")
        rows = []
        if only is not None:
            cursor.execute(
                "SELECT id, received_at, event_count, payload FROM metering_landing "
                "WHERE id = ANY(%s) ORDER BY id FOR UPDATE SKIP LOCKED",
                [list(only)],
            )
            rows = cursor.fetchall()
            result.events = sum(row[2] for row in rows)
        else:
            # Take batches in landing order until max_events (at least one batch).
            cursor.execute(
                "SELECT id, received_at, event_count, payload FROM metering_landing "
                "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                [max_batches],
            )
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
            # The per-customer tally (after the rollups: one lock order for every drainer), whose
            # rows are also the customers whose usage changed.
            cursor.execute(_CUSTOMERS)
            result.customers = {row[0] for row in cursor.fetchall()}
            fault_point("drain.after_rollups")
        cursor.execute("DELETE FROM metering_landing WHERE id = ANY(%s)", [[row[0] for row in rows]])
        fault_point("drain.before_commit")


def drain_lag_seconds(result: DrainResult) -> float:
    if result.oldest_received_at is None:
        return 0.0
    return (datetime.now(UTC) - result.oldest_received_at).total_seconds()
