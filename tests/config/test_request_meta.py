"""Headers a client controls and the audit trail stores (config.request_meta): a request id or a
forwarded address that does not fit its column is dropped, and the write goes through (it was a
500 for every audited write)."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.test import Client

from billing.models import Organization
from tests.factories import APIKeyFactory
from tests.helpers import bearer


@pytest.fixture
def create(in_a, tenant_a):
    key = APIKeyFactory(scopes=["read", "write"]).secret
    client = Client(HTTP_HOST=tenant_a.get_primary_domain().domain, raise_request_exception=False)

    def create(external_id: str, **headers):
        response = client.post(
            "/api/v1/organizations",
            {"external_id": external_id, "name": "N", "currency": "EUR"},
            content_type="application/json",
            **headers,
            **bearer(key),
        )
        assert response.status_code == 201, response.content[:300]
        organization = Organization.objects.get(external_id=external_id)
        return response, LogEntry.objects.get_for_object(organization).get()

    return create


@pytest.mark.django_db
@pytest.mark.parametrize("given", ["x" * 300, "a b", "ümlaut", "x" * 129])
def test_an_unusable_request_id_is_replaced(create, given):
    response, entry = create("acme", HTTP_X_REQUEST_ID=given)
    made = response["X-Request-ID"]
    assert made != given and len(made) == 32 and int(made, 16) >= 0
    assert entry.cid == made


@pytest.mark.django_db
def test_a_usable_request_id_is_kept(create):
    given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01/req:42=" + "x" * 64
    response, entry = create("acme", HTTP_X_REQUEST_ID=given)
    assert response["X-Request-ID"] == entry.cid == given


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("forwarded_for", "forwarded_port", "address", "port"),
    [
        ("garbage", "abc", "127.0.0.1", None),
        ("999.1.1.1", "99999999999", "127.0.0.1", None),
        ("x" * 300, "-5", "127.0.0.1", None),
        ("203.0.113.5, 10.0.0.1", "8443", "203.0.113.5", 8443),
        ("203.0.113.5:1234", "0", "203.0.113.5", None),
        ("[2001:db8::1]:443", "65535", "2001:db8::1", 65535),
    ],
)
def test_forwarded_addresses_are_stored_only_when_they_are_addresses(
    create, forwarded_for, forwarded_port, address, port
):
    _, entry = create("acme", HTTP_X_FORWARDED_FOR=forwarded_for, HTTP_X_FORWARDED_PORT=forwarded_port)
    assert (entry.remote_addr, entry.remote_port) == (address, port)
