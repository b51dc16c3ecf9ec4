"""Provisioning tenants by cloning a migrated template schema.

Migrating a schema from zero takes about a minute (dj-stripe's migrations alone, STACK-NOTES);
cloning the template takes a second or two. The catch is that `migrate_schemas` never migrates the
template, and a clone of a stale template records migrations as applied without having their
columns. So `template_migrate` runs on every deploy (it is part of `platform_migrate`), and
`tenant_create` refuses to clone a template that is not at the migration graph's leaves.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django_tenants.utils import get_public_schema_name, schema_context, schema_exists

from core.errors import DomainError
from tenants.models import Domain, Tenant
from tenants.selectors import tenant_cache_clear

logger = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
RESERVED_SLUGS = frozenset({"public", "www", "api", "admin", "static", "media", "template"})


class ProvisioningError(DomainError):
    code = "provisioning_error"


class TemplateStaleError(ProvisioningError):
    """The template schema is behind the migrations: a deploy step was skipped, not a bad request."""

    code = "template_stale"
    status_code = 503


class TenantExistsError(ProvisioningError):
    code = "tenant_exists"
    status_code = 409


class InvalidTenantError(ProvisioningError):
    code = "invalid_tenant"


@dataclass(frozen=True)
class TenantCreated:
    tenant: Tenant
    domain: str


# Work in the new tenant's schema inside the provisioning transaction (the floors above pass
# what they set up: accounts an owner, accounts.services.tenant_owner). tenants imports none of them.
SchemaSetup = Callable[[Tenant], None]


def template_schema_name() -> str:
    return settings.TENANT_BASE_SCHEMA


def template_pending_migrations() -> list[str]:
    """Migrations of the tenant apps that the template schema has not applied ("app.name")."""
    name = template_schema_name()
    if not schema_exists(name):
        return ["<template schema missing>"]
    with schema_context(name):
        loader = MigrationExecutor(connection).loader
        # Every node of the graph must be recorded: Django's own plan treats an applied leaf as done
        # and would not notice a hole below it. Shared-only apps are recorded too (the router
        # skips their operations), so any missing node counts.
        applied = set(loader.applied_migrations)
        return sorted(f"{app}.{migration}" for app, migration in loader.graph.nodes if (app, migration) not in applied)


def template_migrate(*, verbosity: int = 1) -> None:
    """Create the template schema if needed and bring it to the migration graph's leaves."""
    name = template_schema_name()
    if not schema_exists(name):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{name}"')
    call_command("migrate_schemas", schema_name=name, tenant=True, interactive=False, verbosity=verbosity)
    connection.set_schema_to_public()


def public_tenant_ensure() -> Tenant:
    """The public schema's own Tenant row: django-tenants needs it to serve the public host's
    URLconf, and beat entries that target the public schema need it too (STACK-NOTES)."""
    tenant, _ = Tenant.objects.get_or_create(
        schema_name=get_public_schema_name(), defaults={"name": "Platform", "slug": "public"}
    )
    Domain.objects.get_or_create(domain=settings.TENANT_HOST_SUFFIX, defaults={"tenant": tenant, "is_primary": True})
    return tenant


def tenant_create(
    *,
    name: str,
    slug: str,
    domain: str | None = None,
    default_currency: str = "USD",
    timezone: str = "UTC",
    setup: SchemaSetup | None = None,
) -> TenantCreated:
    """Register a tenant and clone its schema from the template, in one transaction.

    `setup`, if given, runs in the new tenant's schema inside that transaction: what it writes
    (an owner account) is created with the tenant or not at all.
    """
    if not SLUG_RE.match(slug) or slug in RESERVED_SLUGS:
        raise InvalidTenantError(
            f"Slug {slug!r} must be 2-41 lowercase letters, digits or hyphens, start with a letter, "
            f"and not be one of {sorted(RESERVED_SLUGS)}."
        )
    domain = (domain or f"{slug}.{settings.TENANT_HOST_SUFFIX}").lower()
    schema_name = "t_" + slug.replace("-", "_")
    if Tenant.objects.filter(slug=slug).exists() or Domain.objects.filter(domain=domain).exists():
        raise TenantExistsError(f"A tenant with slug {slug!r} or domain {domain!r} already exists.")
    pending = template_pending_migrations()
    if pending:
        raise TemplateStaleError(
            f"The template schema {template_schema_name()!r} is behind the migrations "
            f"({', '.join(pending[:5])}{'…' if len(pending) > 5 else ''}); run `manage.py platform_migrate` first."
        )

    tenant = Tenant(schema_name=schema_name, name=name, slug=slug, default_currency=default_currency, timezone=timezone)
    tenant.full_clean()
    with transaction.atomic(durable=True):
        tenant.save()
        # Clones the template (TENANT_BASE_SCHEMA) and records its migrations as applied.
        tenant.create_schema(check_if_exists=False, verbosity=0)
        Domain.objects.create(domain=domain, tenant=tenant, is_primary=True)
        if setup is not None:
            with schema_context(schema_name):
                setup(tenant)
    connection.set_schema_to_public()
    tenant_cache_clear()
    logger.info("tenant provisioned", extra={"tenant": slug, "schema": schema_name, "domain": domain})
    return TenantCreated(tenant=tenant, domain=domain)
