"""Statements on a tenant's own table without a `SET search_path` round trip.

django-tenants sets the search path on every cursor it hands out: one extra round trip per ORM
statement. On the outbox's hot path (claim, record the outcome, the webhook attempt log: three
small statements per delivery) that was half of the round trips. These statements name the
table with its schema (`"t_acme".core_outboxmessage`), so they are right whatever the search path
is, and run on the underlying connection's cursor, in the same session and transaction as the ORM."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection
from psycopg import sql


def current_schema() -> str:
    """The current tenant's schema name (django-tenants' connection wrapper carries it; Django's
    type stubs do not know that attribute)."""
    schema: str = connection.schema_name  # type: ignore[attr-defined]
    return schema


def tenant_table(table: str) -> sql.Composed:
    """The schema-qualified name of one of the current tenant's tables."""
    return sql.SQL("{}.{}").format(sql.Identifier(current_schema()), sql.Identifier(table))


def raw_execute(statement: sql.Composable, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run one statement on the current connection (opened if needed); the rows it returns."""
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []
