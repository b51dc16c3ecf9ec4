"""What the per-tenant management commands (billing_run, dunning_run) share: the tenant named by
`--tenant` and the instant given by `--at`, refused with a CommandError a person can act on."""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import CommandError

from tenants.models import Tenant


def command_tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"No tenant {slug!r}.")
    return tenant


def command_instant(value: str | None) -> datetime | None:
    """`--at`: an RFC 3339 instant with an offset, or None when not given (now)."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise CommandError("--at must be RFC 3339 with an offset, e.g. 2027-02-01T00:00:00Z.")
    return at
