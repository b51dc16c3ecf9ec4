"""Monthly range partitions of metering_event: created ahead of need, dropped after retention."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import connection, transaction

# Partitions known to exist, per schema (DDL only when one is missing).
_known: dict[str, set[str]] = {}


def _month_start(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def partition_name(month: datetime) -> str:
    return f"metering_event_p{month:%Y_%m}"


def partition_month(name: str) -> datetime:
    return datetime.strptime(name.removeprefix("metering_event_p"), "%Y_%m").replace(tzinfo=UTC)


def partitions_oldest_start() -> datetime | None:
    """The start of the oldest partition of the current schema (None: none yet)."""
    with connection.cursor() as cursor:
        names = _existing(cursor)
    return partition_month(min(names)) if names else None


def _existing(cursor) -> set[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
        "WHERE p.relname = 'metering_event' AND n.nspname = current_schema()"
    )
    return {row[0] for row in cursor.fetchall()}


def partitions_ensure_for(cursor, instants: Iterable[datetime]) -> None:
    months = {_month_start(t) for t in instants}
    known = _known.setdefault(connection.schema_name, set())
    missing = [m for m in months if partition_name(m) not in known]
    if not missing:
        return
    # Ask the database (it answers for this transaction), and remember partitions only once they
    # are committed: a rolled-back drain must not leave the cache believing in a dropped table.
    existing = _existing(cursor)
    for month in missing:
        name = partition_name(month)
        if name not in existing:
            cursor.execute(
                f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF metering_event '
                f"FOR VALUES FROM ('{month.isoformat()}') TO ('{(month + relativedelta(months=1)).isoformat()}')"
            )
            existing.add(name)
    transaction.on_commit(lambda: known.update(existing))


def partitions_maintain(*, now: datetime | None = None) -> dict[str, list[str]]:
    """In the current schema: create partitions for the whole acceptance window and two months
    ahead; drop those wholly older than the raw-event retention. Returns what it did."""
    now = now or datetime.now(UTC)
    tenant = getattr(connection, "tenant", None)
    window_days = getattr(tenant, "event_window_days", 35)
    first = _month_start(now - timedelta(days=window_days))
    months = []
    month = first
    while month <= _month_start(now) + relativedelta(months=2):
        months.append(month)
        month += relativedelta(months=1)
    cutoff = now - timedelta(days=settings.EVENT_RAW_RETENTION_DAYS)
    dropped = []
    with connection.cursor() as cursor:
        before = _existing(cursor)
        partitions_ensure_for(cursor, months)
        for name in sorted(_existing(cursor)):
            start = partition_month(name)
            if start + relativedelta(months=1) <= cutoff:
                cursor.execute(f'DROP TABLE "{name}"')
                dropped.append(name)
        _known.pop(connection.schema_name, None)
        created = sorted(_existing(cursor) - before)
    return {"created": created, "dropped": dropped}


def event_ids_prune(*, now: datetime | None = None) -> int:
    """Forget event ids first accepted more than EVENT_DEDUP_DAYS ago."""
    now = now or datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM metering_event_id WHERE received_at < %s", [now - timedelta(days=settings.EVENT_DEDUP_DAYS)]
        )
        return cursor.rowcount
