"""Ingestion of one request's body, shared by the Django view and the ASGI fast lane."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError

from accounts.api.principal import ApiPrincipal
from accounts.models import APIKeyScope
from metering import ratelimit
from metering.ingest import BodyError, decode_events
from metering.metrics import EVENTS_ACCEPTED, EVENTS_REJECTED, RATE_LIMITED
from metering.ratelimit import ingest_limits
from metering.selectors.meter import meter_value_rules_get
from metering.services.landing import landing_store

logger = logging.getLogger(__name__)


@dataclass
class IngestOutcome:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra) -> IngestOutcome:
    return IngestOutcome(status, {"error": {"code": code, "message": message, **extra}}, headers or {})


def unavailable() -> IngestOutcome:
    # Nothing was stored (the landing insert is one autocommitted statement): safe to retry.
    return error(
        503,
        "storage_unavailable",
        "Storage is unavailable; nothing was stored. Retry shortly.",
        headers={"Retry-After": "1"},
    )


def events_ingest(*, tenant, principal: ApiPrincipal, body: bytes, content_type: str) -> IngestOutcome:
    """Validate, rate-limit and durably land one request's events in the current tenant schema."""
    if APIKeyScope.INGEST not in principal.scopes:
        return error(403, "permission_denied", "This credential lacks the 'ingest' scope.")
    now = datetime.now(UTC)
    try:
        value_rules = meter_value_rules_get()
    except (OperationalError, InterfaceError):
        logger.warning("database unavailable", exc_info=True)
        return unavailable()
    try:
        decoded = decode_events(
            body,
            content_type=content_type,
            now=now,
            window=timedelta(days=tenant.event_window_days),
            value_rules=value_rules,
        )
    except BodyError as exc:
        EVENTS_REJECTED.labels(code=exc.code).inc()
        return error(exc.status_code, exc.code, exc.message)

    wait = ratelimit.take(ingest_limits(tenant=tenant, credential=principal.key_id), cost=decoded.total)
    if wait > 0:
        RATE_LIMITED.inc()
        return error(
            429,
            "rate_limited",
            f"Too many events; retry in {math.ceil(wait)} s.",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )

    for rejection in decoded.rejected:
        EVENTS_REJECTED.labels(code=rejection["code"]).inc()
    if not decoded.events:
        return error(422, "no_valid_events", "No event in the request was valid.", rejected=decoded.rejected)
    try:
        landing_store(events=decoded.events, received_at=now)
    except (OperationalError, InterfaceError):
        logger.warning("database unavailable", exc_info=True)
        return unavailable()
    except DatabaseError:
        logger.exception("landing failed")
        return unavailable()
    EVENTS_ACCEPTED.inc(len(decoded.events))
    return IngestOutcome(202, {"accepted": len(decoded.events), "rejected": decoded.rejected})
