"""Test harness: real PostgreSQL and Redis (embedded by `make test` unless DATABASE_URL and
REDIS_URL name servers), two tenants provisioned once per test database from the migrated
template, and each test wrapped in a transaction that is rolled back (schemas included: DDL is
transactional in PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from tests.factories import TENANT_SLUGS, APIKeyFactory, UserFactory, totp_enable
from tests.helpers import staff_login


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """After pytest-django created (or reused) the test database and migrated the public schema
    and existing tenants: bring the template up to date and make sure the test tenants exist."""
    from tenants.models import Tenant
    from tenants.services.tenant_provision import public_tenant_ensure, template_migrate, tenant_create

    with django_db_blocker.unblock():
        if not connection.settings_dict["NAME"].startswith("test_"):
            # pytest-django sets databases up only for tests marked django_db; the process tests
            # (tests/metering/test_exactly_once.py) are not, as they need committed rows.
            from django.test.utils import setup_databases

            setup_databases(verbosity=0, interactive=False, keepdb=True)
        public_tenant_ensure()
        template_migrate(verbosity=0)
        for slug in TENANT_SLUGS:
            if not Tenant.objects.filter(slug=slug).exists():
                tenant_create(name=f"Tenant {slug}", slug=slug, default_currency="USD")
        connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _fresh_meter_rules():
    # Ingestion caches each tenant's meter rules for a few seconds; a test's meters are rolled
    # back with it, so the next test must not be judged by them.
    from metering.selectors.meter import meter_value_rules_cache_clear

    meter_value_rules_cache_clear()
    yield
    meter_value_rules_cache_clear()


@pytest.fixture(autouse=True)
def _public_schema_between_tests():
    # A test-client request leaves the connection in the last tenant's schema (STACK-NOTES).
    connection.set_schema_to_public()
    yield
    connection.set_schema_to_public()


@pytest.fixture
def tenant_a(db):
    from tenants.models import Tenant

    return Tenant.objects.get(slug=TENANT_SLUGS[0])


@pytest.fixture
def tenant_b(db):
    from tenants.models import Tenant

    return Tenant.objects.get(slug=TENANT_SLUGS[1])


@pytest.fixture
def in_a(tenant_a):
    """Run the test body inside tenant A's schema."""
    with tenant_context(tenant_a):
        yield tenant_a


@pytest.fixture
def client_a(tenant_a) -> Client:
    return Client(HTTP_HOST=tenant_a.get_primary_domain().domain)


@pytest.fixture
def staff(client_a, in_a):
    """`staff(role, **user_fields)`: a new staff user of that role, signed in on client_a with a
    passed second factor (staff have no power without one)."""

    def login(role="admin", **fields):
        user = UserFactory(staff_role=role, **fields)
        staff_login(client_a, email=user.email, totp_secret=totp_enable(user))
        return user

    return login


@pytest.fixture
def writer(in_a) -> str:
    """The secret of a new read/write API key of tenant A."""
    return APIKeyFactory(scopes=["read", "write"]).secret


@pytest.fixture
def client_b(tenant_b) -> Client:
    return Client(HTTP_HOST=tenant_b.get_primary_domain().domain)


@pytest.fixture
def public_schema():
    with schema_context("public"):
        yield


@pytest.fixture
def committed_tenant(django_db_blocker):
    """A tenant whose rows are committed, for tests with real processes (they cannot see a test's
    uncommitted transaction), with an API key (ingest, read); dropped afterwards. Tests using it
    must not use the `db` fixture."""
    from accounts.services.api_key import apikey_create
    from tenants.models import Domain, Tenant
    from tenants.services.tenant_provision import tenant_create

    slug = f"p{uuid.uuid4().hex[:10]}"
    with django_db_blocker.unblock():
        tenant = tenant_create(name="Process test", slug=slug).tenant
        with schema_context(tenant.schema_name):
            key = apikey_create(name="load", scopes=["ingest", "read"], actor=None).secret
        connection.set_schema_to_public()
        try:
            yield tenant, key
        finally:
            connection.set_schema_to_public()
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
            Domain.objects.filter(tenant=tenant).delete()
            Tenant.objects.filter(pk=tenant.pk).delete()
