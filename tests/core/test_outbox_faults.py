"""The outbox's fault test (issue 10): the broker is down when a billing run commits, then workers
are SIGKILLed mid-send, one after another; after recovery by the sweep every effect has happened
exactly once: emails counted in the file backend, webhooks at a real receiver (by `webhook-id`,
which Standard Webhooks receivers deduplicate on).

Real processes on committed data: the billing run is `manage.py billing_run` with a dead Redis
URL; workers are real Celery workers, each with a fault point (core.faults). Between workers the
killed worker's lease is expired by hand (the clock moving on by the lease, 10 minutes for an
invoice delivery)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_string
from pathlib import Path

import pytest
from celery import current_app
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context
from standardwebhooks import Webhook

from billing.models import Organization, PlanVersion
from billing.services.plan import VersionInput, plan_create
from billing.services.subscription import subscription_create
from core.models import OutboxMessage, WebhookDelivery
from core.services.webhook_emit import webhook_emit_bulk
from core.services.webhook_endpoint import webhook_endpoint_create
from invoicing.models import Invoice, InvoicingSettings
from tests.live import ROOT, celery_worker, process_env
from tests.receiver import receiver

pytestmark = [pytest.mark.usefixtures("django_db_setup"), pytest.mark.slow]

CUSTOMERS = 3
DEAD_REDIS = "redis://127.0.0.1:1/0"


def emails(mail_dir: Path) -> list:
    """Every message the file backend wrote (one file per connection, messages separated by a rule)."""
    found = []
    for path in sorted(mail_dir.glob("*.log")):
        for chunk in path.read_text().split("-" * 79 + "\n"):
            if chunk.strip():
                found.append(message_from_string(chunk))
    return found


def sweep(schema: str) -> None:
    """What beat does every minute in every tenant."""
    current_app.send_task("core.outbox_sweep", headers={"_schema_name": schema})


def expire_leases(schema: str) -> None:
    with schema_context(schema):
        OutboxMessage.objects.filter(status="claimed").update(claimed_until=timezone.now() - timedelta(seconds=1))


def statuses(schema: str) -> dict[str, int]:
    with schema_context(schema):
        return dict(Counter(OutboxMessage.objects.values_list("status", flat=True)))


def killed_at(fault: str, schema: str, data_dir: Path) -> None:
    env = {"BILLING_FAULT": fault, "OUTBOX_SWEEP_GRACE_SECONDS": "0", "DATA_DIR": str(data_dir)}
    # The tasks the killed worker had not taken are dropped (as if Redis went down with it), so
    # each worker works from its own sweep, in due order.
    current_app.control.purge()
    with celery_worker(**env) as worker:
        sweep(schema)
        try:
            code = worker.wait(timeout=90)
        except subprocess.TimeoutExpired:
            code = None
        assert code == -signal.SIGKILL, f"the worker did not reach {fault}: {statuses(schema)}"
    expire_leases(schema)


def test_broker_down_at_commit_and_workers_killed_mid_send_every_effect_once(
    committed_tenant, django_db_blocker, tmp_path
):
    tenant, _ = committed_tenant
    schema = tenant.schema_name
    with django_db_blocker.unblock(), receiver() as hooks:
        with schema_context(schema):
            InvoicingSettings.objects.update_or_create(pk=1, defaults={"seller_name": "Seller", "grace_hours": 0})
            version = VersionInput(base_fee="9.00")
            plan_create(actor=None, code="basic", name="Basic", currency="EUR", interval="month", version=version)
            for n in range(CUSTOMERS):
                org = Organization.objects.create(
                    external_id=f"c{n}", name=f"Customer {n}", currency="EUR", billing_email=f"c{n}@example.com"
                )
                subscription_create(
                    actor=None,
                    organization=org,
                    plan_version=PlanVersion.objects.get(),
                    start_at=datetime(2027, 1, 1, tzinfo=UTC),
                )
            secret = webhook_endpoint_create(url=hooks.url, event_types=["invoice.created", "invoice.finalized"]).secret
        connection.set_schema_to_public()

        # 1. The run commits while the broker is down: the fast path fails, is logged, the commit stands.
        run = subprocess.run(
            [sys.executable, "manage.py", "billing_run", "--tenant", tenant.slug, "--at", "2027-01-01T00:00:00+00:00"],
            cwd=ROOT,
            env=process_env(REDIS_URL=DEAD_REDIS),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert "could not enqueue a dispatch" in run.stderr
        # 3 drafts' and 3 finalizations' events, 3 deliveries: all waiting for the sweep
        assert statuses(schema) == {"pending": 3 * CUSTOMERS}

        # 2. Workers die mid-send, one after another (a sweep's tasks run in due order: the drafts'
        # webhooks, then the finalization's deliveries and webhooks, one task per kind): before the
        # 2nd webhook is posted; right after a webhook was answered 200, before anything was
        # recorded (the one moment at which an effect repeats: the receiver gets that id twice);
        # before the 2nd email leaves; right after an email was sent and recorded on the invoice
        # but before the outbox knew (the message runs again: `emailed_at` makes it send nothing).
        for fault in ("webhook.before_send:2", "webhook.after_send:1", "invoice.email_send:2", "outbox.after_handle:1"):
            killed_at(fault, schema, tmp_path)

        # 3. Recovery: a healthy worker and the sweep.
        current_app.control.purge()
        with celery_worker(OUTBOX_SWEEP_GRACE_SECONDS="0", DATA_DIR=str(tmp_path)):
            sweep(schema)
            deadline = time.monotonic() + 120
            while statuses(schema) != {"done": 3 * CUSTOMERS} and time.monotonic() < deadline:
                time.sleep(0.3)
        assert statuses(schema) == {"done": 3 * CUSTOMERS}
        with schema_context(schema):
            invoices = {i.pk: i for i in Invoice.objects.select_related("organization")}
            webhook_ids = dict(
                OutboxMessage.objects.filter(kind="webhook.deliver").values_list("id", "payload__event__type")
            )
        connection.set_schema_to_public()

    # Every invoice emailed exactly once, to its customer, with its PDF.
    sent = emails(tmp_path / "mail")
    assert sorted(m["To"] for m in sent) == [f"c{n}@example.com" for n in range(CUSTOMERS)]
    assert all(i.emailed_at is not None and i.pdf for i in invoices.values())
    assert len({m["Message-ID"] for m in sent}) == CUSTOMERS

    # Every webhook message delivered; only the one whose worker died after the 200 was posted
    # twice, with the same webhook-id: a receiver deduplicating on it sees every event once.
    posts = Counter(hooks.webhook_ids())
    assert set(posts) == {f"msg_{pk}" for pk in webhook_ids}
    assert sorted(posts.values()) == [1] * (2 * CUSTOMERS - 1) + [2]
    assert Counter(webhook_ids.values()) == {"invoice.created": CUSTOMERS, "invoice.finalized": CUSTOMERS}
    verifier = Webhook(secret)
    events = {r.headers["webhook-id"]: verifier.verify(r.body, r.headers) for r in hooks.requests}
    assert Counter((e["type"], e["data"]["id"]) for e in events.values()) == {
        (t, pk): 1 for t in ("invoice.created", "invoice.finalized") for pk in invoices
    }


@pytest.mark.parametrize("fault", ["webhook.before_send:6", "webhook.after_send:6"])
def test_a_worker_killed_during_a_concurrent_batch_leaves_every_webhook_delivered_once(
    committed_tenant, django_db_blocker, tmp_path, fault
):
    """A task's 30 webhooks go out 8 at a time after the first; the worker dies at the 6th send
    (before it, or right after its answer) while others are in flight. After recovery every
    message is done with one logged success, and the only ids posted twice are those that had
    reached the receiver but whose done mark had not been written when the worker died."""
    tenant, _ = committed_tenant
    schema = tenant.schema_name
    with django_db_blocker.unblock(), receiver() as hooks:
        with schema_context(schema):
            secret = webhook_endpoint_create(url=hooks.url).secret
            with transaction.atomic():
                ids = webhook_emit_bulk([("invoice.paid", {"id": n}) for n in range(30)])
        connection.set_schema_to_public()
        killed_at(fault, schema, tmp_path)
        posted_before = set(hooks.webhook_ids())
        with schema_context(schema):
            done_before = {
                f"msg_{pk}" for pk in OutboxMessage.objects.filter(status="done").values_list("id", flat=True)
            }
        connection.set_schema_to_public()
        assert done_before and done_before <= posted_before < {f"msg_{pk}" for pk in ids}

        current_app.control.purge()
        with celery_worker(OUTBOX_SWEEP_GRACE_SECONDS="0", DATA_DIR=str(tmp_path)):
            sweep(schema)
            deadline = time.monotonic() + 120
            while statuses(schema) != {"done": 30} and time.monotonic() < deadline:
                time.sleep(0.3)
        assert statuses(schema) == {"done": 30}
        with schema_context(schema):
            successes = Counter(WebhookDelivery.objects.filter(succeeded=True).values_list("message_id", flat=True))
            failures = WebhookDelivery.objects.filter(succeeded=False).count()
        connection.set_schema_to_public()

    assert successes == dict.fromkeys(ids, 1) and failures == 0
    posts = Counter(hooks.webhook_ids())
    assert posts == {f"msg_{pk}": 2 if f"msg_{pk}" in posted_before - done_before else 1 for pk in ids}
    if fault.startswith("webhook.after_send"):
        assert posted_before - done_before  # at least the 6th: answered, never marked
    verifier = Webhook(secret)
    assert sorted(verifier.verify(r.body, r.headers)["data"]["id"] for r in hooks.requests) == sorted(
        n for n in range(30) for _ in range(posts[f"msg_{ids[n]}"])
    )
