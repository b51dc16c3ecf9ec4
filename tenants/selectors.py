from __future__ import annotations

import time

from django_tenants.utils import get_public_schema_name, remove_www

from tenants.models import Domain, Tenant

# host → tenant, kept in process for 30 s: the domain table changes when tenants are provisioned,
# not per request, and the lookup is otherwise a query on every request.
_TTL_SECONDS = 30.0
_NEGATIVE_TTL_SECONDS = 5.0  # an unknown host becomes known within seconds of provisioning
_cache: dict[str, tuple[float, Tenant | None]] = {}


def tenant_cache_clear() -> None:
    _cache.clear()


def tenant_get_for_host(*, host: str) -> Tenant | None:
    """The tenant serving `host` (port and www. stripped), the public tenant for the platform's
    own host, or None for an unknown host. Reads the public schema."""
    hostname = remove_www(host.split(":")[0].lower())
    now = time.monotonic()
    hit = _cache.get(hostname)
    if hit is not None and hit[0] > now:
        return hit[1]
    domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
    tenant = domain.tenant if domain is not None else None
    _cache[hostname] = (now + (_TTL_SECONDS if tenant is not None else _NEGATIVE_TTL_SECONDS), tenant)
    return tenant


def is_public(tenant: Tenant) -> bool:
    return tenant.schema_name == get_public_schema_name()


DEFAULT_EVENT_WINDOW_DAYS = 35


def tenant_event_window_days() -> int:
    """How late (in days) the current tenant's usage events may arrive (Tenant.event_window_days):
    how long a billed window can still change."""
    from django.db import connection

    return getattr(connection.tenant, "event_window_days", None) or DEFAULT_EVENT_WINDOW_DAYS
