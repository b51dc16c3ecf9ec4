"""/api/v1/webhook-endpoints: the secret shown once, rotation, the delivery log and replay, the house
error shape with nothing written on refusal, and who may call it."""

import pytest

from core.models import OutboxMessage, WebhookDelivery, WebhookEndpoint
from core.services.outbox import outbox_process
from tests.factories import APIKeyFactory, MembershipFactory, UserFactory, totp_enable
from tests.helpers import bearer, jwt_login, jwt_login_mfa
from tests.receiver import receiver

BASE = "/api/v1/webhook-endpoints"


@pytest.fixture
def reader(in_a):
    return APIKeyFactory(scopes=["read"]).secret


def post(client, url, body, key):
    return client.post(url, body, content_type="application/json", **bearer(key))


@pytest.mark.django_db
def test_create_shows_the_secret_once_then_never(client_a, writer):
    response = post(client_a, BASE, {"url": "http://127.0.0.1:9/h", "event_types": ["invoice.paid"]}, writer)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["invoice.paid"] and body["enabled"]
    endpoint_id = body["id"]
    got = client_a.get(f"{BASE}/{endpoint_id}", **bearer(writer))
    listed = client_a.get(BASE, **bearer(writer))
    assert got.status_code == listed.status_code == 200
    assert "secret" not in got.json() and body["secret"] not in got.content.decode()
    assert [e["id"] for e in listed.json()["results"]] == [endpoint_id]
    assert body["secret"] not in listed.content.decode()

    rotated = post(client_a, f"{BASE}/{endpoint_id}/rotate-secret", {"overlap_hours": 2}, writer)
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in (body["secret"], "") and rotated.json()["previous_secret_expires_at"]

    change = {"enabled": False, "event_types": []}
    patched = client_a.patch(f"{BASE}/{endpoint_id}", change, content_type="application/json", **bearer(writer))
    assert patched.status_code == 200
    assert (patched.json()["enabled"], patched.json()["disabled_reason"]) == (False, "Disabled by hand.")
    assert patched.json()["event_types"] == []
    assert client_a.delete(f"{BASE}/{endpoint_id}", **bearer(writer)).status_code == 204
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"url": "not a url"}, "validation_error", "url"),
        ({"url": "http://127.0.0.1/h", "event_types": ["invoice.exploded"]}, "validation_error", "event_types.0"),
        ({"url": "http://127.0.0.1/h", "event_types": "invoice.paid"}, "validation_error", "event_types"),
        ({"url": "http://127.0.0.1/h", "description": "a\x00b"}, "validation_error", "description"),
        ({}, "validation_error", "url"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(client_a, writer, body, code, field):
    response = post(client_a, BASE, body, writer)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and field in error["fields"]
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.django_db
def test_malformed_bodies_and_unknown_ids(client_a, writer):
    assert post(client_a, BASE, "[1]", writer).json()["error"]["code"] == "malformed_request"
    assert client_a.post(BASE, "{", content_type="application/json", **bearer(writer)).status_code == 400
    for path in (f"{BASE}/999", f"{BASE}/abc", f"{BASE}/99999999999999999999999", f"{BASE}/1/deliveries"):
        response = client_a.get(path, **bearer(writer))
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", path
    assert client_a.get(f"{BASE}?limit=0", **bearer(writer)).json()["error"]["code"] == "invalid_parameter"
    assert client_a.get(f"{BASE}?cursor=zzz", **bearer(writer)).json()["error"]["code"] == "invalid_cursor"
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.django_db
def test_a_private_target_is_refused_with_its_code_when_the_setting_is_off(client_a, writer, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    response = post(client_a, BASE, {"url": "http://169.254.169.254/latest"}, writer)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "webhook_target_refused"
    assert "not a public address" in response.json()["error"]["message"]
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.django_db
def test_deliveries_are_listed_and_replayed(client_a, writer):
    with receiver(statuses=[500, 200]) as hooks:
        endpoint_id = post(client_a, BASE, {"url": hooks.url}, writer).json()["id"]
        organization = post(
            client_a, "/api/v1/organizations", {"external_id": "acme", "name": "Acme", "currency": "EUR"}, writer
        )
        assert organization.status_code == 201
        [message] = OutboxMessage.objects.all()
        assert message.payload["event"]["type"] == "customer.created"
        assert message.payload["event"]["data"]["id"] == "acme"
        outbox_process(ids=[message.pk])  # fails (500)
        deliveries = client_a.get(f"{BASE}/{endpoint_id}/deliveries", **bearer(writer)).json()["results"]
        assert [(d["webhook_id"], d["status_code"], d["succeeded"]) for d in deliveries] == [
            (f"msg_{message.pk}", 500, False)
        ]
        replay = f"{BASE}/{endpoint_id}/deliveries/{deliveries[0]['id']}/replay"
        # a failed message is still waiting for its retry: a replay would be a second copy
        assert post(client_a, replay, {}, writer).json()["error"]["code"] == "replay_not_possible"
        OutboxMessage.objects.filter(pk=message.pk).update(status="dead")
        response = post(client_a, replay, {}, writer)
        assert response.status_code == 202 and response.json() == {"replayed": f"msg_{message.pk}"}
        outbox_process(ids=[message.pk])
    assert hooks.webhook_ids() == [f"msg_{message.pk}"] * 2
    assert list(WebhookDelivery.objects.order_by("id").values_list("status_code", flat=True)) == [500, 200]


@pytest.mark.django_db
def test_scopes_and_roles(client_a, reader, writer):
    assert client_a.get(BASE, **bearer(reader)).status_code == 200
    refused = post(client_a, BASE, {"url": "http://127.0.0.1/h"}, reader)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert client_a.get(BASE).status_code in (401, 403)

    member = MembershipFactory().user
    token = jwt_login(client_a, email=member.email)
    assert client_a.get(BASE, **bearer(token)).status_code == 403
    assert post(client_a, BASE, {"url": "http://127.0.0.1/h"}, token).status_code == 403
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "allowed"),
    [("owner", True), ("admin", True), ("finance", False), ("support", False), ("viewer", False)],
)
def test_only_owners_and_admins_manage_endpoints(in_a, client_a, role, allowed):
    # Staff who passed the second factor: the role decides, for reads too (URLs and delivery logs).
    user = UserFactory(staff_role=role)
    token = jwt_login_mfa(client_a, email=user.email, totp_secret=totp_enable(user))
    listed = client_a.get(BASE, **bearer(token))
    created = post(client_a, BASE, {"url": "http://127.0.0.1/h"}, token)
    if allowed:
        assert (listed.status_code, created.status_code) == (200, 201), created.content
        assert WebhookEndpoint.objects.count() == 1
    else:
        assert (listed.status_code, created.status_code) == (403, 403)
        assert created.json()["error"]["code"] == "permission_denied"
        assert WebhookEndpoint.objects.count() == 0
