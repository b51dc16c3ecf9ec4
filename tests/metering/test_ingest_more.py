from datetime import UTC, datetime

import msgspec
import pytest
from allauth.idp.oidc.models import Client as OIDCClient
from django.db import connection
from django_tenants.utils import tenant_context

from metering.models import LandingBatch
from metering.services.partitions import partition_name, partitions_maintain
from tests.factories import APIKeyFactory
from tests.helpers import bearer

BODY = msgspec.json.encode({"id": "o-1", "customer": "acme", "type": "api_call"})


@pytest.mark.django_db
def test_oauth2_client_with_ingest_scope_can_send_events(tenant_a, client_a):
    with tenant_context(tenant_a):
        oidc = OIDCClient(name="collector", id="collector", type=OIDCClient.Type.CONFIDENTIAL)
        oidc.set_secret("collector-secret")
        oidc.set_scopes(["ingest", "read"])
        oidc.set_grant_types(["client_credentials"])
        oidc.save()
    token = client_a.post(
        "/identity/o/api/token",
        {
            "grant_type": "client_credentials",
            "scope": "ingest",
            "client_id": "collector",
            "client_secret": "collector-secret",
        },
    ).json()["access_token"]
    response = client_a.post("/api/v1/events", BODY, content_type="application/json", **bearer(token))
    assert response.status_code == 202, response.content
    with tenant_context(tenant_a):
        assert LandingBatch.objects.count() == 1


@pytest.mark.django_db
def test_api_key_of_a_cannot_send_events_to_b(tenant_a, tenant_b, client_b):
    with tenant_context(tenant_a):
        key = APIKeyFactory(scopes=["ingest"]).secret
    response = client_b.post("/api/v1/events", BODY, content_type="application/json", **bearer(key))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    with tenant_context(tenant_b):
        assert LandingBatch.objects.count() == 0


@pytest.mark.django_db
def test_partitions_are_made_ahead_and_dropped_after_retention(in_a, settings):
    settings.EVENT_RAW_RETENTION_DAYS = 400
    now = datetime(2031, 3, 15, tzinfo=UTC)  # far from any partition other tests may have made
    with connection.cursor() as cursor:
        cursor.execute(
            f'CREATE TABLE "{partition_name(datetime(2029, 6, 1, tzinfo=UTC))}" PARTITION OF metering_event '
            "FOR VALUES FROM ('2029-06-01') TO ('2029-07-01')"
        )
    done = partitions_maintain(now=now)
    # Every partition wholly older than now - 400 days (2030-02-08) goes, ours included; no newer one.
    assert "metering_event_p2029_06" in done["dropped"]
    assert all(name < "metering_event_p2030_02" for name in done["dropped"])
    # the 35-day acceptance window back to February, and two months ahead
    assert done["created"] == [
        "metering_event_p2031_02",
        "metering_event_p2031_03",
        "metering_event_p2031_04",
        "metering_event_p2031_05",
    ]
    assert partitions_maintain(now=now) == {"created": [], "dropped": []}


@pytest.mark.django_db
def test_metering_metrics_are_exported(client_a, in_a):
    key = APIKeyFactory(scopes=["ingest"]).secret
    client_a.post("/api/v1/events", BODY, content_type="application/json", **bearer(key))
    text = client_a.get("/metrics").content.decode()
    for name in (
        "billing_events_accepted_total",
        "billing_events_rejected_total",
        "billing_events_drained_total",
        "billing_events_duplicates_total",
        "billing_drain_lag_seconds",
        "billing_drain_backlog_events",
        "billing_drain_batch_seconds",
        "billing_ingest_rate_limited_total",
    ):
        assert name in text, name
