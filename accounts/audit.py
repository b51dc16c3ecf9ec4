"""Who did it: the audit-log context for requests whose caller is known only after DRF
authentication (API keys, OAuth2 clients, JWTs), which runs after AuditlogMiddleware."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from auditlog.context import auditlog_value, set_actor
from auditlog.models import LogEntry


def audit_origin_set(*, actor, origin: str, details: dict | None = None) -> None:
    """Record `actor` (a User or None) and the origin (e.g. "api_key") on every log entry that the
    rest of this request writes. The middleware's context dict is shared by the whole request, so
    updating it here reaches the entries written by the view."""
    try:
        context = auditlog_value.get()
    except LookupError:  # outside a request (commands, tasks): the caller sets its own context
        return
    if actor is not None:
        context["actor"] = actor
    context["additional_data"] = {"origin": origin, **(details or {})}


@contextmanager
def audit_actor(actor) -> Iterator[None]:
    """Attribute the audit entries written inside to `actor` when no request already did
    (management commands, Celery tasks, tests calling services). A request's context wins: it
    also carries the origin, the address and the request id."""
    try:
        auditlog_value.get()
    except LookupError:
        with set_actor(actor):
            yield
        return
    yield


def audit_event(instance, *, event: str, **details) -> None:
    """One entry for a domain event that is more than a single model's diff (a plan change, a
    cancellation): `changes` holds the event's name and its details as [before, after] pairs."""
    changes = {"event": [None, event]}
    for key, value in details.items():
        changes[key] = list(value) if isinstance(value, tuple) else [None, value]
    LogEntry.objects.log_create(
        instance, force_log=True, action=LogEntry.Action.UPDATE, changes=json.loads(json.dumps(changes, default=str))
    )
