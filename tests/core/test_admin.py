"""The outbox and webhooks in the admin: endpoints written through the services with the secret shown
once, "Retry now" on outbox messages, deliveries read-only with "Replay"; owner/admin only for
changes."""

import pytest
from django.contrib.messages import get_messages
from django.db import transaction

from core.models import OutboxMessage, WebhookDelivery, WebhookEndpoint
from core.services.outbox import outbox_add, outbox_process
from core.services.webhook_emit import webhook_emit
from tests.receiver import receiver


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.django_db
def test_an_endpoint_added_in_the_admin_shows_its_secret_once(client_a, staff):
    staff("admin")
    response = client_a.post(
        "/admin/core/webhookendpoint/add/",
        {"url": "http://127.0.0.1:9/h", "description": "erp", "event_types": ["invoice.paid"]},
        follow=True,
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.description, endpoint.event_types, endpoint.enabled) == ("erp", ["invoice.paid"], True)
    [shown] = [t for t in texts(response) if "Signing secret" in t]
    secret = shown.rsplit(" ", 1)[-1]
    assert secret.startswith("whsec_")
    page = client_a.get(f"/admin/core/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and secret not in page.content.decode()
    assert endpoint.secret_encrypted not in page.content.decode()


@pytest.mark.django_db
def test_rotate_retry_and_replay_actions(client_a, staff):
    staff("owner")
    with receiver(statuses=[500, 200]) as hooks:
        client_a.post("/admin/core/webhookendpoint/add/", {"url": hooks.url, "description": ""})
        endpoint = WebhookEndpoint.objects.get()
        before = endpoint.secret_encrypted
        response = client_a.post(
            "/admin/core/webhookendpoint/",
            {"action": "rotate_secret", "_selected_action": [endpoint.pk]},
            follow=True,
        )
        assert any("new signing secret" in t for t in texts(response))
        endpoint.refresh_from_db()
        assert endpoint.secret_encrypted != before and endpoint.previous_secret_encrypted == before

        with transaction.atomic():
            [msg] = webhook_emit(event_type="invoice.paid", payload={"id": 1})
        outbox_process(ids=[msg])  # 500: failed, waiting for its retry
        client_a.post("/admin/core/outboxmessage/", {"action": "retry_now", "_selected_action": [msg]})
        assert OutboxMessage.objects.get(pk=msg).status == "pending"
        outbox_process(ids=[msg])  # 200
        delivery = WebhookDelivery.objects.filter(succeeded=True).get()
        client_a.post("/admin/core/webhookdelivery/", {"action": "replay", "_selected_action": [delivery.pk]})
        assert OutboxMessage.objects.get(pk=msg).status == "pending"
        outbox_process(ids=[msg])
    assert hooks.webhook_ids() == [f"msg_{msg}"] * 3


@pytest.mark.django_db
def test_finance_sees_but_cannot_change(client_a, staff):
    staff("finance")
    assert client_a.get("/admin/core/outboxmessage/").status_code == 200
    assert client_a.get("/admin/core/webhookendpoint/add/").status_code == 403
    pk = outbox_add(kind="nothing.here", payload={})
    OutboxMessage.objects.filter(pk=pk).update(status="dead")
    response = client_a.post("/admin/core/outboxmessage/", {"action": "retry_now", "_selected_action": [pk]})
    assert response.status_code == 200  # the action is not offered: nothing happens
    assert OutboxMessage.objects.get(pk=pk).status == "dead"
