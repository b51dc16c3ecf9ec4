"""The durable step of ingestion: one row per accepted request, committed before the 202."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from metering.ingest import encode_landing

NOTIFY_CHANNEL = "metering_landing"

# One statement: the insert and the drainer's wake-up travel in the same transaction, and
# PostgreSQL delivers the notification only once the row is committed.
_INSERT = (
    "WITH ins AS (INSERT INTO metering_landing (received_at, event_count, payload) VALUES (%s, %s, %s) RETURNING id) "
    "SELECT id, pg_notify(%s, %s) FROM ins"
)


def landing_store(*, events: list, received_at: datetime) -> int:
    """Store accepted events durably (autocommit: committed when this returns). Returns the batch id."""
    payload = encode_landing(events)
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [received_at, len(events), payload, NOTIFY_CHANNEL, connection.schema_name])
        return cursor.fetchone()[0]
