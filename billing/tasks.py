"""Celery tasks of billing: thin, idempotent wrappers (the tenant travels in the task headers)."""

from __future__ import annotations

from celery import shared_task
from django.db import connection

from billing.selectors.unknown_customers import unknown_customers_totals
from metering.metrics import UNKNOWN_CUSTOMER_EVENTS, UNKNOWN_CUSTOMERS


@shared_task(name="billing.unknown_customers_measure", acks_late=True, time_limit=300, soft_time_limit=270)
def unknown_customers_measure() -> dict:
    """Beat runs this every few minutes in every tenant: the gauges of usage from customer ids
    no organization has (listed in the admin under Metering → Usage from unknown customers)."""
    customers, events = unknown_customers_totals()
    UNKNOWN_CUSTOMERS.labels(tenant=connection.schema_name).set(customers)
    UNKNOWN_CUSTOMER_EVENTS.labels(tenant=connection.schema_name).set(events)
    return {"customers": customers, "events": events}
