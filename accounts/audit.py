"""Who did it: the audit-log context for requests whose caller is known only after DRF
authentication (API keys, OAuth2 clients, JWTs), which runs after AuditlogMiddleware."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeAlias

from auditlog.cid import get_cid
from auditlog.context import auditlog_value, set_actor
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import pre_save
from django.dispatch.dispatcher import _make_id
from django.utils import timezone

from accounts.models import User

# Who a service acts for, as audit entries record it: a signed-in user (staff or member, through
# a session, a JWT or an API key created by them), or None for the system (the billing run, beat
# tasks) and for API keys and OAuth2 clients, whose identity goes into the entry's origin
# (`audit_origin_set`) rather than its actor.
Actor: TypeAlias = User | None


def audit_origin_set(*, actor: Actor, origin: str, details: dict | None = None) -> None:
    """Record `actor` (a User or None) and the origin (e.g. "api_key") on every log entry that the
    rest of this request writes. The middleware's context dict is shared by the whole request, so
    updating it here reaches the entries written by the view."""
    context = _live_context()
    if context is None:  # outside a request (commands, tasks): the caller sets its own context
        return
    if actor is not None:
        context["actor"] = actor
    context["additional_data"] = {"origin": origin, **(details or {})}


def _live_context() -> dict | None:
    """The audit context of the request (or `set_actor` block) in progress, if any.

    django-auditlog leaves its context variable set after its context manager exits (it only
    disconnects the signal receiver that applies it), so a value there may be stale: a past
    request's actor. It is live only while its receiver is connected."""
    try:
        context = auditlog_value.get()
    except LookupError:
        return None
    key = (context.get("signal_duid"), _make_id(LogEntry))
    return context if any(receiver[0] == key for receiver in pre_save.receivers) else None


@contextmanager
def audit_actor(actor: Actor) -> Iterator[None]:
    """Attribute the audit entries written inside to `actor` when no request already did
    (management commands, Celery tasks, tests calling services). A request's context wins: it
    also carries the origin, the address and the request id."""
    if _live_context() is not None:
        yield
        return
    with set_actor(actor):
        yield


def audit_event(instance, *, event: str, **details) -> None:
    """One entry for a domain event that is more than a single model's diff (a plan change, a
    cancellation): `changes` holds the event's name and its details as [before, after] pairs (a
    tuple value is the pair; anything else is what it is after)."""
    audit_events_bulk([instance], event=event, details=lambda _: details)


def audit_events_bulk(instances, *, event: str, details=None) -> None:
    """Domain-event entries for many rows of one model in one INSERT (a billing run finalizes
    thousands of invoices with bulk updates, which django-auditlog does not see). The live
    request's (or `audit_actor` block's) actor, address, origin and id apply as they would to any
    entry."""
    instances = list(instances)
    if not instances:
        return
    context = _live_context() or {}
    actor = context.get("actor") if isinstance(context.get("actor"), User) else None
    content_type = ContentType.objects.get_for_model(instances[0])
    cid, now = get_cid(), timezone.now()
    entries = []
    for instance in instances:
        changes = {"event": [None, event]}
        for key, value in (details(instance) if details else {}).items():
            changes[key] = list(value) if isinstance(value, tuple) else [None, value]
        entries.append(
            LogEntry(
                content_type=content_type,
                object_pk=str(instance.pk),
                object_id=instance.pk,
                object_repr=str(instance)[:200],
                action=LogEntry.Action.UPDATE,
                changes=json.loads(json.dumps(changes, default=str)),
                actor=actor,
                actor_email=getattr(actor, "email", None),
                remote_addr=context.get("remote_addr"),
                remote_port=context.get("remote_port"),
                additional_data=context.get("additional_data"),
                cid=cid,
                timestamp=now,
            )
        )
    LogEntry.objects.bulk_create(entries)
