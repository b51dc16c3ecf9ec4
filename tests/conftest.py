"""Test harness: real PostgreSQL and Redis (embedded by `make test` unless DATABASE_URL and
REDIS_URL name servers), two tenants provisioned once per test database from the migrated
template, and each test wrapped in a transaction that is rolled back (schemas included: DDL is
transactional in PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
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


def _tables(cursor, schema: str) -> set[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
        [schema],
    )
    return {name for (name,) in cursor.fetchall()}


def _with_rows(cursor, schema: str, tables: set[str]) -> list[str]:
    """The tables of `schema` among `tables` that hold at least one row (one statement)."""
    cursor.execute(
        " UNION ALL ".join(
            f"SELECT {quote(name)} WHERE EXISTS (SELECT 1 FROM {ident(schema, name)})" for name in sorted(tables)
        )
    )
    return [name for (name,) in cursor.fetchall()]


def _template_state(template: str) -> dict[str, list[str]]:
    """The template's tables that hold rows (migrations, content types, permissions), with their
    columns (generated ones left out: they cannot be inserted)."""
    with connection.cursor() as cursor:
        tables = _tables(cursor, template)
        with_rows = _with_rows(cursor, template, tables)
        columns: dict[str, list[str]] = {}
        for name in with_rows:
            cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                " AND is_generated = 'NEVER' ORDER BY ordinal_position",
                [template, name],
            )
            columns[name] = [column for (column,) in cursor.fetchall()]
    return columns


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ident(*parts: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def _tenant_reset(tenant, template: str, template_rows: dict[str, list[str]], row: dict):
    """Put a committed tenant back to what a fresh clone of the template is: every table emptied,
    the template's rows copied back, every sequence where the template's is; its Tenant row and
    domains as provisioned; its keys in Redis (rate limits, cache) gone and no task of an earlier
    test left queued for a worker. One transaction and a few statements, where a clone
    (django-tenants' PL/pgSQL copy of ~130 tables, then a faked migrate) and the DROP took
    several times as long.

    One difference from a fresh clone: the monthly partitions of metering_event that earlier tests
    created stay (empty). Dropping them would be wrong, not only slow: processes remember which
    partitions exist (metering.services.partitions) and this one is the test process."""
    from accounts.selectors.api_key import apikey_cache_clear
    from config.celery import app
    from tenants.models import Domain, Tenant
    from tenants.selectors import tenant_cache_clear

    schema = tenant.schema_name
    connection.set_schema_to_public()
    if connection.connection is not None and not connection.is_usable():
        connection.close()  # after tests/metering/test_postgres_outage.py restarted PostgreSQL
    with transaction.atomic(), connection.cursor() as cursor:
        # TRUNCATE gives each table new files, which costs even when it is empty: only those that
        # hold rows (a test writes to a few of the ~130); CASCADE adds the empty ones that refer
        # to them, which PostgreSQL insists on.
        written = _with_rows(cursor, schema, _tables(cursor, schema))
        if written:
            cursor.execute("TRUNCATE " + ", ".join(ident(schema, name) for name in written) + " CASCADE")
        for name, columns in template_rows.items():
            listed = ", ".join(ident(column) for column in columns)
            cursor.execute(
                f"INSERT INTO {ident(schema, name)} ({listed}) OVERRIDING SYSTEM VALUE"
                f" SELECT {listed} FROM {ident(template, name)}"
            )
        cursor.execute(
            "SELECT setval(format('%%I.%%I', s.schemaname, s.sequencename)::regclass,"
            " coalesce(t.last_value, t.start_value), t.last_value IS NOT NULL)"
            " FROM pg_sequences s JOIN pg_sequences t ON t.schemaname = %s AND t.sequencename = s.sequencename"
            " WHERE s.schemaname = %s",
            [template, schema],
        )
        Domain.objects.filter(tenant_id=tenant.pk, is_primary=False).delete()
        Tenant.objects.filter(pk=tenant.pk).update(**row)
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        stale = list(client.scan_iter(match=f"*{schema}*", count=1000))
        if stale:
            client.delete(*stale)
    finally:
        client.close()
    app.control.purge()
    tenant_cache_clear()
    apikey_cache_clear()
    tenant.refresh_from_db()


@pytest.fixture(scope="session")
def _committed_tenant_once(django_db_blocker):
    """The committed tenant of the run: provisioned once, dropped at the end."""
    from tenants.models import Domain, Tenant
    from tenants.services.tenant_provision import template_schema_name, tenant_create

    slug = f"p{uuid.uuid4().hex[:10]}"
    with django_db_blocker.unblock():
        tenant = tenant_create(name="Process test", slug=slug).tenant
        row = {
            field.attname: getattr(tenant, field.attname)
            for field in Tenant._meta.concrete_fields
            if not field.primary_key
        }
        template = template_schema_name()
        template_rows = _template_state(template)
        connection.set_schema_to_public()
    try:
        yield tenant, lambda: _tenant_reset(tenant, template, template_rows, row)
    finally:
        with django_db_blocker.unblock():
            connection.set_schema_to_public()
            if connection.connection is not None and not connection.is_usable():
                connection.close()
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
            Domain.objects.filter(tenant=tenant).delete()
            Tenant.objects.filter(pk=tenant.pk).delete()


@pytest.fixture
def committed_tenant(_committed_tenant_once, django_db_blocker):
    """A tenant whose rows are committed, for tests with real processes (they cannot see a test's
    uncommitted transaction), with an API key (ingest, read). Tests using it must not use the `db`
    fixture. Provisioning a tenant per test (a clone of the template, then a DROP) cost seconds
    each, so the run provisions one and each test gets it reset to a fresh clone's state."""
    from accounts.services.api_key import apikey_create

    tenant, reset = _committed_tenant_once
    with django_db_blocker.unblock():
        reset()
        with schema_context(tenant.schema_name):
            key = apikey_create(name="load", scopes=["ingest", "read"], actor=None).secret
        connection.set_schema_to_public()
        try:
            yield tenant, key
        finally:
            connection.set_schema_to_public()
