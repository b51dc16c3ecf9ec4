"""Live usage: channel-layer group names, and which organizations have someone watching.

The drainer publishes "usage changed" only for organizations with a live portal connection:
consumers register in a Redis sorted set per tenant (score = expiry), so a drain touching
thousands of customers costs one Redis read, not thousands of publishes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from metering.redisconn import redis_client

logger = logging.getLogger("metering.live")

PRESENCE_SECONDS = 300  # a consumer that vanished without disconnecting stops counting after this


def usage_group_name(*, schema_name: str, external_id: str) -> str:
    """One group per tenant schema and organization. The schema is part of the name so nothing
    crosses tenants; the external id is hashed because group names allow only [A-Za-z0-9._-]."""
    digest = hashlib.sha256(external_id.encode()).hexdigest()[:32]
    return f"usage.{schema_name}.{digest}"


def _presence_key(schema_name: str) -> str:
    return f"billing:live:{schema_name}"


def live_watch(*, schema_name: str, external_id: str) -> None:
    redis_client().zadd(_presence_key(schema_name), {external_id: time.time() + PRESENCE_SECONDS})


def live_unwatch(*, schema_name: str, external_id: str) -> None:
    redis_client().zrem(_presence_key(schema_name), external_id)


def live_watched(*, schema_name: str) -> set[str]:
    """Organizations (external ids) with a live connection in this tenant."""
    client = redis_client()
    key = _presence_key(schema_name)
    now = time.time()
    client.zremrangebyscore(key, "-inf", now)
    return {member.decode() for member in client.zrangebyscore(key, now, "+inf")}


# --- usage listeners --------------------------------------------------------------------------
# Apps above metering (the portal's alerts and usage caps) learn which organizations' usage a
# drain changed without metering importing them: they register a listener when they load, and
# the drainer calls every listener after each committed drain, on the drained tenant's
# connection. A listener must be cheap (it runs on the drainer's thread, between drains) and must
# not raise for one organization's sake; the drainer logs and drops what one raises.

UsageListener = Callable[[set[str]], None]
_listeners: list[UsageListener] = []


def usage_listener_add(listener: UsageListener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def usage_changed_notify(customers: set[str]) -> None:
    """Called by the drainer with the external ids whose usage a committed drain changed."""
    for listener in list(_listeners):
        try:
            listener(customers)
        except Exception:
            logger.exception("usage listener failed", extra={"listener": getattr(listener, "__name__", "?")})
