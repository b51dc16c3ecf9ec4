"""TENANT_LIMIT_SET_CALLS (config/settings.py): django-tenants issues `SET search_path` once per
connection and tenant switch instead of before every statement. That is only safe if whatever
switches tenants, or undoes a SET, makes the connection issue it again: these tests serve two
tenants alternately on one connection and roll a SET back under it."""

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from billing.models import Organization
from tests.factories import APIKeyFactory, OrganizationFactory
from tests.helpers import bearer


def _names() -> list[str]:
    return list(Organization.objects.order_by("name").values_list("name", flat=True))


def _search_path() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        return cursor.fetchone()[0]


@pytest.fixture
def two_tenants(tenant_a, tenant_b):
    with tenant_context(tenant_a):
        OrganizationFactory(external_id="acme", name="Acme at A")
        key_a = APIKeyFactory(scopes=["read"]).secret
    with tenant_context(tenant_b):
        OrganizationFactory(external_id="acme", name="Acme at B")
        OrganizationFactory(external_id="globex", name="Globex at B")
        key_b = APIKeyFactory(scopes=["read"]).secret
    return key_a, key_b


@pytest.mark.django_db
def test_the_platform_runs_with_it_and_one_tenant_sets_the_path_once(tenant_a, two_tenants):
    assert settings.TENANT_LIMIT_SET_CALLS is True
    with tenant_context(tenant_a), CaptureQueriesContext(connection) as queries:
        _names()
        _names()
    assert [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SET ")] == [
        f'SET search_path = "{tenant_a.schema_name}","public"'
    ]
    assert len(queries.captured_queries) == 3


@pytest.mark.django_db
def test_two_tenants_served_alternately_on_one_connection_see_only_their_rows(client_a, client_b, two_tenants):
    key_a, key_b = two_tenants
    connection.ensure_connection()
    session = connection.connection
    for _ in range(3):  # A, B, A, B, ... through the whole middleware stack (tenant routing)
        a = client_a.get("/api/v1/organizations", **bearer(key_a))
        assert a.status_code == 200
        assert [o["name"] for o in a.json()["results"]] == ["Acme at A"]
        b = client_b.get("/api/v1/organizations", **bearer(key_b))
        assert b.status_code == 200
        assert sorted(o["name"] for o in b.json()["results"]) == ["Acme at B", "Globex at B"]
    assert connection.connection is session  # one database session served both tenants


@pytest.mark.django_db
def test_a_search_path_set_in_a_rolled_back_savepoint_is_set_again(tenant_a, tenant_b, two_tenants):
    class Abort(Exception):
        pass

    connection.set_tenant(tenant_a)
    assert _names() == ["Acme at A"]
    try:
        with transaction.atomic():  # a savepoint: the test runs inside a transaction
            connection.set_tenant(tenant_b)
            assert _names() == ["Acme at B", "Globex at B"]  # SET to B inside the savepoint
            raise Abort
    except Abort:
        pass
    # PostgreSQL undid the SET with the savepoint (the session is back on A's path) while the
    # connection still serves B: the next statement must set B's path again.
    assert _names() == ["Acme at B", "Globex at B"]
    assert _search_path() == f"{tenant_b.schema_name}, public"
    connection.set_tenant(tenant_a)
    assert _names() == ["Acme at A"]
