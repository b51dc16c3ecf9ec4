"""Who did it: the audit-log context for requests whose caller is known only after DRF
authentication (API keys, OAuth2 clients, JWTs), which runs after AuditlogMiddleware."""

from __future__ import annotations

from auditlog.context import auditlog_value


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
