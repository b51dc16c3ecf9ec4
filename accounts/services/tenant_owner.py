"""Provisioning a tenant with its first owner. Tenants sit below accounts (ARCHITECTURE, "Which
app may import which"), so the tenant is registered and cloned by tenants.services.tenant_provision
and the owner is created here, in the new schema, inside the same transaction (its `setup`
callback): a tenant is never left without the owner that was asked for, nor an owner without
its tenant."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from accounts.models import StaffRole
from accounts.services.user import staff_user_create
from tenants.models import Tenant
from tenants.services.tenant_provision import SchemaSetup, tenant_create


@dataclass(frozen=True)
class TenantWithOwner:
    tenant: Tenant
    domain: str
    owner_email: str | None
    owner_password: str | None  # returned once: the caller shows it; it is stored only hashed


def tenant_create_with_owner(
    *,
    name: str,
    slug: str,
    domain: str | None = None,
    owner_email: str | None = None,
    default_currency: str = "USD",
    timezone: str = "UTC",
) -> TenantWithOwner:
    """tenant_create, and if `owner_email` is given an owner account in the new schema with a
    random password. Raises tenant_create's ProvisioningError subclasses (nothing is created)."""
    password: str | None = None
    setup: SchemaSetup | None = None
    if owner_email:
        email, password = owner_email, secrets.token_urlsafe(12)

        def setup(tenant: Tenant) -> None:
            staff_user_create(email=email, password=password, role=StaffRole.OWNER, actor=None)

    created = tenant_create(
        name=name, slug=slug, domain=domain, default_currency=default_currency, timezone=timezone, setup=setup
    )
    return TenantWithOwner(
        tenant=created.tenant, domain=created.domain, owner_email=owner_email, owner_password=password
    )
