"""The ASGI fast lane (metering.api.lane) through the real ASGI application: API-key requests are
served by the lane's thread pool; other credentials and methods reach the Django view."""

import msgspec
import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.db import connection
from django_tenants.utils import schema_context

from config.asgi import application
from metering.models import LandingBatch

pytestmark = pytest.mark.usefixtures("django_db_setup")


def call(host, *, method="POST", body=b"", token=None, content_type="application/json", extra=()):
    headers = [(b"host", host.encode()), (b"content-type", content_type.encode()), *extra]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))

    async def run():
        communicator = HttpCommunicator(application, method, "/api/v1/events", body=body, headers=headers)
        return await communicator.get_response(timeout=10)

    response = async_to_sync(run)()
    return response["status"], msgspec.json.decode(response["body"]), dict(response["headers"])


def landed(django_db_blocker, schema) -> int:
    with django_db_blocker.unblock(), schema_context(schema):
        count = sum(LandingBatch.objects.values_list("event_count", flat=True))
    connection.set_schema_to_public()
    return count


def test_lane_accepts_refuses_and_delegates(committed_tenant, django_db_blocker):
    tenant, key = committed_tenant
    host = tenant.get_primary_domain().domain
    event = msgspec.json.encode(
        {
            "events": [
                {"id": "l1", "customer": "acme", "type": "t"},
                {"id": "l2", "customer": "acme", "type": "t", "timestamp": "x"},
            ]
        }
    )

    status, body, headers = call(host, body=event, token=key)
    assert status == 202
    assert body == {
        "accepted": 1,
        "rejected": [{"index": 1, "id": "l2", "code": "invalid_timestamp", "message": body["rejected"][0]["message"]}],
    }
    assert headers[b"x-request-id"]
    assert landed(django_db_blocker, tenant.schema_name) == 1

    assert call(host, body=b"{nope", token=key)[1]["error"]["code"] == "malformed_json"
    assert call(host, body=event, token="bk_00000000_unknown")[:1] == (401,)
    assert call("nobody.localhost", body=event, token=key)[:2] == (
        404,
        {"error": {"code": "not_found", "message": "No tenant is served at this host."}},
    )
    too_big = call(host, body=b"{}", token=key, extra=[(b"content-length", b"99999999")])
    assert too_big[0] == 413 and too_big[1]["error"]["code"] == "payload_too_large"
    # Not an API key, or not a POST: the Django view answers, same error shape.
    assert call(host, body=event, token="not-a-key")[1]["error"]["code"] == "invalid_token"
    assert call(host, body=event)[1]["error"]["code"] == "not_authenticated"
    assert call(host, method="GET", token=key)[:1] == (405,)
    assert landed(django_db_blocker, tenant.schema_name) == 1
