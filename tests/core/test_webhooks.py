"""Outbound webhooks to a real local HTTP receiver, verified with the `standardwebhooks` library:
signing, the attempt log, Svix's retry schedule, 410 and 5-day disabling, secret rotation with an
overlap, the event filter, replay, and the SSRF guard."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from standardwebhooks import Webhook, WebhookVerificationError

from core.models import OutboxMessage, WebhookDelivery, WebhookEndpoint
from core.services.outbox import outbox_process
from core.services.webhook_delivery import RETRY_DELAYS
from core.services.webhook_emit import webhook_emit, webhook_emit_bulk
from core.services.webhook_endpoint import (
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)
from core.services.webhook_http import TargetRefused, target_resolve
from tests.receiver import receiver

T0 = datetime(2027, 6, 1, 9, 0, tzinfo=UTC)


def emit(event_type="customer.created", data=None) -> list[int]:
    with transaction.atomic():
        return webhook_emit(event_type=event_type, payload=data or {"id": "acme"})


def verify(secret: str, request) -> dict:
    return Webhook(secret).verify(request.body, request.headers)


@pytest.mark.django_db
def test_a_delivery_is_signed_logged_and_verifiable(in_a):
    with receiver(body=b"x" * 5000) as hooks:
        created = webhook_endpoint_create(url=hooks.url, description="prod")
        assert created.secret.startswith("whsec_")
        stored = WebhookEndpoint.objects.get()
        assert created.secret not in stored.secret_encrypted and created.secret[6:] not in stored.secret_encrypted
        with time_machine.travel(T0, tick=False):
            [msg] = emit(data={"id": "acme", "name": "Acmé"})
            assert outbox_process(ids=[msg]).done == 1
    [request] = hooks.requests
    assert request.path == "/hooks"
    assert request.headers["webhook-id"] == f"msg_{msg}"
    assert request.headers["webhook-timestamp"] == str(int(T0.timestamp()))
    assert request.headers["content-type"] == "application/json"
    with time_machine.travel(T0, tick=False):
        event = verify(created.secret, request)
        with pytest.raises(WebhookVerificationError):
            verify("whsec_" + "A" * 43, request)  # another secret
    assert event["type"] == "customer.created" and event["version"] == 1
    assert event["data"] == {"id": "acme", "name": "Acmé"} and event["id"].startswith("evt_")
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.message_id, delivery.event_type, delivery.attempt) == (msg, "customer.created", 1)
    assert (delivery.status_code, delivery.succeeded, delivery.error) == (200, True, "")
    assert delivery.response_excerpt == "x" * 1024 and delivery.latency_ms is not None
    assert OutboxMessage.objects.get(pk=msg).status == "done"


@pytest.mark.django_db
def test_one_message_per_matching_enabled_endpoint(in_a):
    with receiver() as hooks:
        everything = webhook_endpoint_create(url=hooks.url).endpoint
        invoices = webhook_endpoint_create(url=hooks.url, event_types=["invoice.paid", "invoice.voided"]).endpoint
        off = webhook_endpoint_create(url=hooks.url).endpoint
        webhook_endpoint_update(endpoint=off, enabled=False)
        customer = emit("customer.created")
        paid = emit("invoice.paid", {"id": 1})
    endpoints = lambda ids: sorted(m.payload["endpoint_id"] for m in OutboxMessage.objects.filter(pk__in=ids))  # noqa: E731
    assert endpoints(customer) == [everything.pk]
    assert endpoints(paid) == sorted([everything.pk, invoices.pk])
    # both copies of one event carry the same event id
    assert len({m.payload["event"]["id"] for m in OutboxMessage.objects.filter(pk__in=paid)}) == 1


@pytest.mark.django_db
def test_no_endpoint_no_message(in_a):
    assert emit() == [] and OutboxMessage.objects.count() == 0
    with pytest.raises(ValueError, match="unknown webhook event types"):
        emit("invoice.exploded")


@pytest.mark.django_db
def test_failures_follow_svix_schedule_then_the_message_dies(in_a):
    with receiver(statuses=[500]) as hooks:
        webhook_endpoint_create(url=hooks.url)
        with time_machine.travel(T0, tick=False):
            [msg] = emit()
        at = T0
        for attempt in range(1, 9):
            with time_machine.travel(at, tick=False):
                outbox_process(ids=[msg])
                # a moment early, nothing is sent
                assert outbox_process(ids=[msg]).skipped == 1
            if attempt <= len(RETRY_DELAYS):
                at += RETRY_DELAYS[attempt - 1]
                assert OutboxMessage.objects.get(pk=msg).available_at == at
    sent = [
        d.attempted_at - T0 for d in WebhookDelivery.objects.order_by("attempt") if d.status_code == 500
    ]  # 8 attempts, at Svix's offsets
    offsets = [timedelta(0)]
    for delay in RETRY_DELAYS:
        offsets.append(offsets[-1] + delay)
    assert sent == offsets
    assert [seconds.total_seconds() for seconds in RETRY_DELAYS] == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert len(hooks.requests) == 8 and set(hooks.webhook_ids()) == {f"msg_{msg}"}
    message = OutboxMessage.objects.get(pk=msg)
    assert (message.status, message.attempts, message.last_error) == ("dead", 8, "WebhookAttemptFailed: HTTP 500")
    assert WebhookEndpoint.objects.get().enabled  # 1 day and 8 h of failures: not 5 days


@pytest.mark.django_db
def test_410_disables_the_endpoint_at_once(in_a):
    with receiver(statuses=[410]) as hooks:
        endpoint = webhook_endpoint_create(url=hooks.url).endpoint
        [first] = emit()
        [second] = emit()
        outbox_process(ids=[first, second])
    assert len(hooks.requests) == 1  # the second went dead without a request
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_reason == "The endpoint answered 410 Gone."
    assert [OutboxMessage.objects.get(pk=pk).status for pk in (first, second)] == ["dead", "dead"]
    assert emit() == []  # a disabled endpoint gets no new messages
    webhook_endpoint_update(endpoint=endpoint, enabled=True)
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == "" and endpoint.failing_since is None


@pytest.mark.django_db
def test_five_days_of_failures_disable_and_a_success_resets_the_clock(in_a):
    with receiver(statuses=[503, 200, 503]) as hooks:
        endpoint = webhook_endpoint_create(url=hooks.url).endpoint
        with time_machine.travel(T0, tick=False):
            outbox_process(ids=emit())  # fails: the run of failures starts
        with time_machine.travel(T0 + timedelta(days=4), tick=False):
            outbox_process(ids=emit())  # succeeds: the run is over
        endpoint.refresh_from_db()
        assert endpoint.failing_since is None
        with time_machine.travel(T0 + timedelta(days=5), tick=False):
            outbox_process(ids=emit())  # fails again: a new run starts now
        with time_machine.travel(T0 + timedelta(days=9, hours=23), tick=False):
            outbox_process(ids=emit())
        endpoint.refresh_from_db()
        assert endpoint.enabled and endpoint.failing_since == T0 + timedelta(days=5)
        with time_machine.travel(T0 + timedelta(days=10), tick=False):
            [last] = emit()
            outbox_process(ids=[last])
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.disabled_reason == "Every attempt failed for 5 days (last: HTTP 503)."
    assert OutboxMessage.objects.get(pk=last).status == "dead"


@pytest.mark.django_db
def test_rotation_signs_with_both_secrets_during_the_overlap(in_a):
    with receiver() as hooks:
        with time_machine.travel(T0, tick=False):
            created = webhook_endpoint_create(url=hooks.url)
            rotated = webhook_endpoint_rotate_secret(endpoint=created.endpoint, overlap=timedelta(hours=24))
            assert rotated.secret != created.secret
            outbox_process(ids=emit())
        with time_machine.travel(T0 + timedelta(hours=24, seconds=1), tick=False):
            outbox_process(ids=emit())
    during, after = hooks.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    with time_machine.travel(T0, tick=False):
        assert verify(created.secret, during)["type"] == "customer.created"  # the receiver still has the old one
        assert verify(rotated.secret, during)["type"] == "customer.created"
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    with time_machine.travel(T0 + timedelta(hours=24, seconds=1), tick=False):
        assert verify(rotated.secret, after)
        with pytest.raises(WebhookVerificationError):
            verify(created.secret, after)


@pytest.mark.django_db
def test_replay_sends_the_same_message_again(in_a):
    with receiver() as hooks:
        webhook_endpoint_create(url=hooks.url)
        [msg] = emit()
        outbox_process(ids=[msg])
        delivery = WebhookDelivery.objects.get()
        assert webhook_delivery_replay(delivery=delivery) is True
        assert webhook_delivery_replay(delivery=delivery) is False  # already waiting
        outbox_process(ids=[msg])
    assert hooks.webhook_ids() == [f"msg_{msg}", f"msg_{msg}"]
    assert json.loads(hooks.requests[0].body) == json.loads(hooks.requests[1].body)
    assert list(WebhookDelivery.objects.order_by("id").values_list("attempt", "succeeded")) == [(1, True), (1, True)]


@pytest.mark.django_db
def test_private_targets_are_refused_when_the_setting_is_off(in_a, settings):
    with receiver() as hooks:
        endpoint = webhook_endpoint_create(url=hooks.url).endpoint  # allowed in tests
        settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
        with pytest.raises(TargetRefused, match="not a public address"):
            webhook_endpoint_create(url=hooks.url)
        assert WebhookEndpoint.objects.count() == 1
        [msg] = emit()
        outbox_process(ids=[msg])
    assert hooks.requests == []  # the URL was refused before any connection
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.status_code is None and delivery.error.startswith("refused: the host '127.0.0.1' resolves to")
    assert OutboxMessage.objects.get(pk=msg).status == "failed"
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8000/x",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://224.0.0.1/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "http:///nohost",
    ],
)
def test_the_guard_refuses(url, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(TargetRefused):
        target_resolve(url)


def test_the_guard_lets_public_addresses_through(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    assert target_resolve("https://93.184.215.14:8443/hook") == ("https", "93.184.215.14", 8443, ["93.184.215.14"])
    assert target_resolve("http://[2606:4700::1111]/") == ("http", "2606:4700::1111", 80, ["2606:4700::1111"])


@pytest.mark.django_db
def test_saving_resolves_the_host_only_where_private_targets_are_refused(in_a, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    webhook_endpoint_create(url="https://hooks.invalid/x")  # development: the format is enough
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(TargetRefused, match="does not resolve"):
        webhook_endpoint_create(url="https://hooks.invalid/y")
    assert list(WebhookEndpoint.objects.values_list("url", flat=True)) == ["https://hooks.invalid/x"]


@pytest.mark.django_db
def test_a_batch_is_sent_concurrently_after_the_first_and_each_outcome_recorded_once(in_a):
    # the first alone (200), then 5 of the others answered 500 in whatever order they arrive
    with receiver(statuses=[200, *[500] * 5, 200]) as hooks:
        secret = webhook_endpoint_create(url=hooks.url).secret
        with transaction.atomic():
            ids = webhook_emit_bulk([("invoice.paid", {"id": n}) for n in range(20)])
        with time_machine.travel(T0, tick=False):
            result = outbox_process(ids=ids)
    assert (result.done, result.failed, result.dead, result.skipped) == (15, 5, 0, 0)
    posted = [r.headers["webhook-id"] for r in hooks.requests]
    assert posted[0] == f"msg_{ids[0]}" and sorted(posted) == sorted(f"msg_{pk}" for pk in ids)
    with time_machine.travel(T0, tick=False):
        assert sorted(verify(secret, r)["data"]["id"] for r in hooks.requests) == list(range(20))
    messages = {m.pk: m for m in OutboxMessage.objects.filter(pk__in=ids)}
    logs = {d.message_id: d for d in WebhookDelivery.objects.all()}
    assert sorted(logs) == sorted(ids)  # one attempt logged per message
    failed = [pk for pk in ids if messages[pk].status == "failed"]
    assert len(failed) == 5 and ids[0] not in failed
    for pk in ids:
        message, log = messages[pk], logs[pk]
        assert message.attempts == log.attempt == 1
        if pk in failed:
            assert (log.status_code, log.succeeded, message.last_error) == (
                500,
                False,
                "WebhookAttemptFailed: HTTP 500",
            )
            assert message.available_at == T0 + RETRY_DELAYS[0] and message.done_at is None
        else:
            assert (log.status_code, log.succeeded, message.status, message.done_at) == (200, True, "done", T0)
