import time

import pytest
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from accounts.services.tenant_owner import tenant_create_with_owner
from tenants.models import Domain, Tenant
from tenants.services.tenant_provision import (
    InvalidTenantError,
    TemplateStaleError,
    TenantExistsError,
    template_pending_migrations,
    tenant_create,
)


def _tables(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_tenant_is_cloned_from_the_template_with_every_table_and_an_owner():
    started = time.monotonic()
    created = tenant_create_with_owner(name="Gamma", slug="gamma", owner_email="Boss@Gamma.example")
    elapsed = time.monotonic() - started

    assert created.tenant.schema_name == "t_gamma"
    assert created.domain == "gamma.localhost"
    assert Domain.objects.get(domain="gamma.localhost").tenant == created.tenant
    template_tables = _tables("tenant_template")
    assert template_tables and _tables("t_gamma") == template_tables
    with schema_context("t_gamma"):
        from accounts.models import User

        owner = User.objects.get()
        assert owner.email == "boss@gamma.example"
        assert owner.staff_role == "owner"
        assert owner.check_password(created.owner_password)
        assert created.owner_password not in owner.password  # stored hashed
    with schema_context("t_gamma"):
        assert template_pending_migrations() == []  # the clone recorded the template's migrations
    assert elapsed < 15, f"cloning took {elapsed:.1f}s"


@pytest.mark.django_db
def test_stale_template_is_refused_and_nothing_is_created():
    with schema_context("tenant_template"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'billing' AND name = '0001_initial'")
    assert template_pending_migrations() == ["billing.0001_initial"]
    tenants_before = Tenant.objects.count()

    with pytest.raises(TemplateStaleError, match=r"billing\.0001_initial"):
        tenant_create(name="Delta", slug="delta")

    assert Tenant.objects.count() == tenants_before
    assert not Domain.objects.filter(domain="delta.localhost").exists()
    assert not schema_exists("t_delta")


@pytest.mark.django_db
def test_duplicate_and_invalid_slugs_are_refused(tenant_a):
    with pytest.raises(TenantExistsError):
        tenant_create(name="Again", slug=tenant_a.slug)
    for slug in ("public", "Bad_Slug", "x", "1abc"):
        with pytest.raises(InvalidTenantError):
            tenant_create(name="Bad", slug=slug)
    assert not Tenant.objects.filter(name__in=["Again", "Bad"]).exists()


def test_tenant_create_command_prints_the_owner_password_once(db, capsys):
    from django.core.management import call_command

    call_command("tenant_create", name="Epsilon", domain="epsilon.localhost", admin_email="o@epsilon.example")
    out = capsys.readouterr().out
    assert "tenant epsilon (schema t_epsilon) at epsilon.localhost provisioned in" in out
    password = out.split("password (shown once): ")[1].strip()
    with schema_context("t_epsilon"):
        from accounts.models import User

        assert User.objects.get(email="o@epsilon.example").check_password(password)


@pytest.mark.django_db
def test_an_owner_that_cannot_be_created_leaves_no_tenant(monkeypatch):
    """The owner is made inside the provisioning transaction: if it fails, the tenant row, its
    domain and its schema are rolled back with it."""
    from accounts.services import tenant_owner

    def failing(**kwargs):
        raise RuntimeError("owner refused")

    monkeypatch.setattr(tenant_owner, "staff_user_create", failing)
    tenants_before = Tenant.objects.count()
    with pytest.raises(RuntimeError, match="owner refused"):
        tenant_create_with_owner(name="Zeta", slug="zeta", owner_email="o@zeta.example")
    assert Tenant.objects.count() == tenants_before
    assert not Domain.objects.filter(domain="zeta.localhost").exists()
    assert not schema_exists("t_zeta")


@pytest.mark.django_db
def test_without_an_owner_email_no_account_is_made():
    created = tenant_create_with_owner(name="Eta", slug="eta")
    assert (created.owner_email, created.owner_password) == (None, None)
    with schema_context("t_eta"):
        from accounts.models import User

        assert User.objects.count() == 0
