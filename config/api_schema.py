"""Schema generation hooks (SPECTACULAR_SETTINGS)."""

from __future__ import annotations

from metering.api.events_schema import EventsIngestSchemaView

EVENTS_PATH = "/api/v1/events"


def events_endpoint_add(endpoints):
    """drf-spectacular describes DRF views only; the ingestion endpoint is a plain view (no DRF on
    the hot path), so its schema-only stand-in is added at its path."""
    return [*endpoints, (EVENTS_PATH, r"^api/v1/events$", "POST", EventsIngestSchemaView.as_view())]
