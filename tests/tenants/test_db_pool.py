"""The web process's connection pool (config/settings.py, DB_POOL; config/asgi.py turns it on).
A connection one request returns to the pool is handed to the next, which may be another
tenant's: with TENANT_LIMIT_SET_CALLS django-tenants sets the search_path once per connection, so
these tests hold it to setting it again on every borrowed connection. Each "request" is what
Django does under ASGI: a new connection wrapper (a new thread), the tenant middleware's
set_tenant, queries, and close() at request_finished (CONN_MAX_AGE is 0 with a pool)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django_tenants.postgresql_backend.base import DatabaseWrapper

ROOT = Path(__file__).resolve().parents[2]
ALIAS = "pooled_test"


@pytest.fixture
def pooled():
    """Makes connection wrappers that borrow from one pool of a single connection, so that each
    request gets the connection the previous one returned."""
    settings_dict = {
        **connection.settings_dict,
        "CONN_MAX_AGE": 0,
        "OPTIONS": {**connection.settings_dict["OPTIONS"], "pool": {"min_size": 1, "max_size": 1, "timeout": 5}},
    }
    yield lambda: DatabaseWrapper(dict(settings_dict), alias=ALIAS)
    DatabaseWrapper._connection_pools.pop(ALIAS).close()


def _request(wrapper_of, schema_name: str) -> tuple[list[str], int]:
    wrapper = wrapper_of()
    wrapper.set_schema(schema_name)
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT current_schemas(false), pg_backend_pid()")
            schemas, pid = cursor.fetchone()
        return schemas, pid
    finally:
        wrapper.close()


@pytest.mark.django_db
def test_a_pooled_connection_handed_to_another_tenants_request_takes_that_tenants_path(pooled, tenant_a, tenant_b):
    assert settings.TENANT_LIMIT_SET_CALLS is True
    path_a, pid = _request(pooled, tenant_a.schema_name)
    assert path_a == [tenant_a.schema_name, "public"]
    # The same PostgreSQL session (the pool's one connection), still SET to A's path when returned.
    assert _request(pooled, tenant_b.schema_name) == ([tenant_b.schema_name, "public"], pid)
    assert _request(pooled, "public") == (["public"], pid)  # the platform's own hosts
    assert _request(pooled, tenant_a.schema_name) == ([tenant_a.schema_name, "public"], pid)


@pytest.mark.django_db
def test_one_wrapper_reconnecting_through_the_pool_sets_its_path_again(pooled, tenant_a, tenant_b):
    # A thread that lives on (a lane's) closes its wrapper and reconnects: another request may have
    # used the connection meanwhile, so its record of the path must not be trusted.
    wrapper = pooled()
    wrapper.set_tenant(tenant_a)
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    wrapper.close()
    assert _request(pooled, tenant_b.schema_name) == ([tenant_b.schema_name, "public"], pid)
    with wrapper.cursor() as cursor:  # still tenant A's wrapper: reconnects to the same session
        cursor.execute("SELECT current_schemas(false), pg_backend_pid()")
        assert cursor.fetchone() == ([tenant_a.schema_name, "public"], pid)
    wrapper.close()


def _settings_in_process(code: str, **environ: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "DB_POOL"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", **environ},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


SHOW = """
import json
from django.conf import settings
from django.db import connection
connection.ensure_connection()
pool = connection.pool
print(json.dumps({
    "pool": settings.DATABASES["default"]["OPTIONS"].get("pool"),
    "conn_max_age": settings.DATABASES["default"]["CONN_MAX_AGE"],
    "borrowed": pool is not None and connection.connection._pool is pool,
    "name": pool.name if pool else None,
}))
"""


@pytest.mark.slow
def test_the_web_process_borrows_from_the_pool_and_other_processes_do_not():
    web = _settings_in_process("import config.asgi\n" + SHOW, DJANGO_ENV="development")
    assert web == {
        "pool": {"min_size": 2, "max_size": 28, "timeout": 5.0, "max_idle": 300.0, "name": "web"},
        "conn_max_age": 0,
        "borrowed": True,
        "name": "web",
    }
    other = _settings_in_process("import django\ndjango.setup()\n" + SHOW, DJANGO_ENV="development")
    assert other == {"pool": None, "conn_max_age": 0, "borrowed": False, "name": None}
    off = _settings_in_process("import config.asgi\n" + SHOW, DJANGO_ENV="development", DB_POOL="0")
    assert off == other


@pytest.mark.slow
def test_processes_the_web_process_starts_do_not_inherit_the_pool():
    """config.asgi turns the pool on for its own settings only: a Celery worker a test (or the web
    process) starts must not inherit DB_POOL (a worker on the pool stopped taking tasks)."""
    code = "import config.asgi, json, os\nprint(json.dumps({'environ': os.environ.get('DB_POOL')}))\n"
    assert _settings_in_process(code, DJANGO_ENV="development") == {"environ": None}
    assert _settings_in_process(code, DJANGO_ENV="development", DB_POOL="0") == {"environ": "0"}
