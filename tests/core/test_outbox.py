"""The outbox: written only inside the cause's transaction, claimed by a conditional update,
retried on its kind's schedule, dead after the last attempt, fenced against a worker whose lease
ran out, swept when its dispatch was lost, revived by "Retry now"."""

import threading
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.db import connection, connections, transaction
from django.utils import timezone
from psycopg import sql

from core import crypto
from core.models import OutboxMessage
from core.services import outbox as outbox_service
from core.services.outbox import (
    OutboxGiveUp,
    OutboxRecord,
    OutboxSend,
    outbox_add,
    outbox_claim,
    outbox_process,
    outbox_register,
    outbox_retry,
    outbox_run,
    outbox_sweep,
)

T0 = datetime(2027, 5, 1, 12, 0, tzinfo=UTC)
DELAYS = (timedelta(seconds=10), timedelta(minutes=10))


@pytest.fixture
def effect(in_a):
    """A registered test kind whose handler records its payloads and fails as scripted."""
    calls: list[dict] = []
    failures: list[Exception] = []

    def handler(message):
        calls.append(message.payload)
        if failures:
            raise failures.pop(0)

    outbox_register("test.effect", handler=handler, retry_delays=DELAYS, lease=timedelta(minutes=1))
    yield calls, failures
    outbox_service._kinds.pop("test.effect", None)


def status(pk):
    return OutboxMessage.objects.values_list("status", "attempts", "available_at", "last_error").get(pk=pk)


@pytest.mark.django_db
def test_outbox_add_refuses_to_run_outside_a_transaction(in_a):
    # pytest-django wraps the test in a transaction: pretend it does not, as a caller in autocommit
    with mock.patch.object(connections["default"], "in_atomic_block", False):
        with pytest.raises(RuntimeError, match="inside the transaction"):
            outbox_add(kind="test.effect", payload={})
    assert OutboxMessage.objects.count() == 0


@pytest.mark.django_db
def test_added_once_per_key_and_dispatched_on_commit(effect, django_capture_on_commit_callbacks):
    with mock.patch.object(outbox_service.current_app, "send_task") as send:
        with django_capture_on_commit_callbacks(execute=True):
            first = outbox_add(kind="test.effect", payload={"n": 1}, key="thing:1")
            again = outbox_add(kind="test.effect", payload={"n": 2}, key="thing:1")
            later = outbox_add(kind="test.effect", payload={"n": 3}, available_at=T0 + timedelta(days=3650))
    assert again is None and first is not None and later is not None
    assert OutboxMessage.objects.filter(key="thing:1").count() == 1
    # only what is due now goes out on commit (the later one is the sweep's)
    [call] = send.call_args_list
    assert call.args == ("core.outbox_dispatch",)
    assert call.kwargs["args"] == [[first]]
    assert call.kwargs["headers"] == {"_schema_name": connection.schema_name}


@pytest.mark.django_db
def test_a_rolled_back_cause_leaves_no_message_and_no_dispatch(effect, django_capture_on_commit_callbacks):
    with mock.patch.object(outbox_service.current_app, "send_task") as send:
        with django_capture_on_commit_callbacks(execute=True):
            with pytest.raises(ZeroDivisionError), transaction.atomic():
                outbox_add(kind="test.effect", payload={"n": 1})
                1 / 0  # the change that caused it fails
    assert OutboxMessage.objects.count() == 0 and send.call_count == 0


@pytest.mark.django_db
def test_a_dead_broker_at_commit_is_logged_and_the_commit_stands(effect, django_capture_on_commit_callbacks, caplog):
    with mock.patch.object(outbox_service.current_app, "send_task", side_effect=ConnectionError("redis down")):
        with django_capture_on_commit_callbacks(execute=True):
            pk = outbox_add(kind="test.effect", payload={"n": 1})
    assert "could not enqueue a dispatch" in caplog.text
    assert status(pk)[:2] == ("pending", 0)  # still there, for the sweep


@pytest.mark.django_db
def test_claim_is_conditional_and_leases(effect):
    with time_machine.travel(T0, tick=False):
        pk = outbox_add(kind="test.effect", payload={"n": 1})
        message = outbox_claim(pk)
        assert message.attempts == 1 and message.claimed_until == T0 + timedelta(minutes=1)
        assert outbox_claim(pk) is None  # claimed: nobody else gets it while the lease runs
    with time_machine.travel(T0 + timedelta(minutes=1, seconds=1), tick=False):
        again = outbox_claim(pk)  # the first worker died: its lease expired
        assert again.attempts == 2
        # the first worker wakes up and finishes: its outcome is not recorded (fenced)
        outbox_run(message)
        assert status(pk)[:2] == ("claimed", 2)
        outbox_run(again)
    assert status(pk)[:2] == ("done", 2)
    assert OutboxMessage.objects.get(pk=pk).done_at is not None


@pytest.mark.django_db
def test_failures_back_off_on_the_schedule_then_die(effect):
    calls, failures = effect
    failures.extend([ConnectionError("smtp down")] * 3)
    with time_machine.travel(T0, tick=False):
        pk = outbox_add(kind="test.effect", payload={"n": 1})
        assert outbox_process(ids=[pk]).failed == 1
        assert status(pk) == ("failed", 1, T0 + DELAYS[0], "ConnectionError: smtp down")
        assert outbox_process(ids=[pk]).skipped == 1  # not due yet
    with time_machine.travel(T0 + DELAYS[0], tick=False):
        outbox_process(ids=[pk])
        assert status(pk)[:3] == ("failed", 2, T0 + DELAYS[0] + DELAYS[1])
    with time_machine.travel(T0 + DELAYS[0] + DELAYS[1], tick=False):
        assert outbox_process(ids=[pk]).dead == 1  # third attempt = len(DELAYS) + 1: the last
    assert status(pk)[:2] == ("dead", 3)
    assert len(calls) == 3


@pytest.mark.django_db
def test_a_short_retry_is_enqueued_with_its_countdown(effect):
    _, failures = effect
    failures.append(TimeoutError("slow"))
    pk = outbox_add(kind="test.effect", payload={})
    with mock.patch.object(outbox_service.current_app, "send_task") as send:
        outbox_process(ids=[pk])
    [call] = send.call_args_list
    assert call.kwargs["args"] == [[pk]] and call.kwargs["countdown"] == 10.0


@pytest.mark.django_db
def test_give_up_is_dead_at_once(effect):
    _, failures = effect
    failures.append(OutboxGiveUp("gone"))
    pk = outbox_add(kind="test.effect", payload={})
    outbox_process(ids=[pk])
    assert status(pk)[:2] == ("dead", 1)
    assert status(pk)[3] == "OutboxGiveUp: gone"


@pytest.mark.django_db
def test_kinds_without_a_handler_here_are_not_claimed(in_a):
    pk = outbox_add(kind="not.registered", payload={})
    assert outbox_process(ids=[pk]).skipped == 1
    assert status(pk)[:2] == ("pending", 0)


@pytest.mark.django_db
def test_the_sweep_finds_lost_and_abandoned_messages_and_prunes_old_ones(effect, settings):
    settings.OUTBOX_SWEEP_GRACE_SECONDS = 30
    with time_machine.travel(T0, tick=False):
        lost = outbox_add(kind="test.effect", payload={"n": 1})
        fresh_later = outbox_add(kind="test.effect", payload={"n": 2})
        abandoned = outbox_add(kind="test.effect", payload={"n": 3})
        outbox_claim(abandoned)  # the worker was killed: its lease runs out at T0 + 1 min
        done = outbox_add(kind="test.effect", payload={"n": 4})
        outbox_process(ids=[done])
    OutboxMessage.objects.filter(pk=fresh_later).update(available_at=T0 + timedelta(seconds=50))
    with time_machine.travel(T0 + timedelta(seconds=61), tick=False):
        with mock.patch.object(outbox_service.current_app, "send_task") as send:
            result = outbox_sweep()
    # fresh_later is due only 11 s ago: the fast path's, not the sweep's
    assert send.call_args.kwargs["args"] == [[lost, abandoned]] and result.enqueued == 2
    assert result.pruned == 0
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        with mock.patch.object(outbox_service.current_app, "send_task"):
            assert outbox_sweep().pruned == 1
    assert not OutboxMessage.objects.filter(pk=done).exists()


@pytest.mark.django_db
def test_retry_now_revives_dead_and_failed_and_leaves_done_alone(effect):
    _, failures = effect
    failures.extend([OutboxGiveUp("x"), ConnectionError("y")])
    dead = outbox_add(kind="test.effect", payload={})
    failed = outbox_add(kind="test.effect", payload={})
    done = outbox_add(kind="test.effect", payload={})
    outbox_process(ids=[dead, failed, done])
    assert [status(pk)[0] for pk in (dead, failed, done)] == ["dead", "failed", "done"]
    with mock.patch.object(outbox_service.current_app, "send_task"):
        assert outbox_retry(ids=[dead, failed, done]) == 2
    assert status(dead)[:2] == ("pending", 0) and status(failed)[:2] == ("pending", 0)
    assert status(done)[0] == "done"
    assert outbox_process(ids=[dead, failed]).done == 2


def test_field_encryption_rotates_keys(settings):
    old, new = crypto.derived_key("old"), crypto.derived_key("new")
    settings.FIELD_ENCRYPTION_KEYS = [old]
    token = crypto.encrypt("whsec_abc")
    assert "whsec_abc" not in token
    settings.FIELD_ENCRYPTION_KEYS = [new, old]  # the new key first: it encrypts, both decrypt
    assert crypto.decrypt(token) == "whsec_abc"
    rotated = crypto.reencrypt(token)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == "whsec_abc"
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt(token)  # the dropped key's token no longer opens
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt(rotated[:-4] + "AAAA")  # tampered


@pytest.mark.django_db
def test_a_kind_may_claim_its_messages_together(in_a):
    seen = []

    def handler(message):
        # while the first runs, the task's others are already this worker's
        seen.append(sorted(OutboxMessage.objects.values_list("status", flat=True)))

    outbox_register("test.together", handler=handler, retry_delays=DELAYS, batch=3, claim_together=True)
    try:
        ids = [outbox_add(kind="test.together", payload={"n": n}) for n in range(3)]
        other = outbox_add(kind="test.effect.unregistered", payload={})
        result = outbox_process(ids=[*ids, other])
    finally:
        outbox_service._kinds.pop("test.together", None)
    assert (result.done, result.skipped) == (3, 1)
    assert seen[0] == ["claimed", "claimed", "claimed", "pending"]
    with pytest.raises(ValueError, match="too short"):
        outbox_register("test.slow", handler=handler, retry_delays=DELAYS, batch=50, claim_together=True)


@pytest.mark.django_db
def test_a_handlers_record_is_written_with_the_done_mark_even_when_the_claim_was_lost(in_a):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE record_probe (message_id bigint, note text)")

    def handler(message):
        return OutboxRecord(
            statement=sql.SQL("INSERT INTO pg_temp.record_probe VALUES (%(probe_id)s, %(probe_note)s)"),
            params={"probe_id": message.pk, "probe_note": message.payload["note"]},
        )

    def probe():
        with connection.cursor() as cursor:
            cursor.execute("SELECT message_id, note FROM pg_temp.record_probe ORDER BY message_id")
            return cursor.fetchall()

    outbox_register("test.record", handler=handler, retry_delays=DELAYS, lease=timedelta(minutes=1))
    try:
        kept = outbox_add(kind="test.record", payload={"note": "kept"})
        lost = outbox_add(kind="test.record", payload={"note": "lost"})
        assert outbox_process(ids=[kept]).done == 1
        assert probe() == [(kept, "kept")]
        assert status(kept)[:2] == ("done", 1)

        with time_machine.travel(T0, tick=False):
            first = outbox_claim(lost)
        with time_machine.travel(T0 + timedelta(minutes=2), tick=False):
            second = outbox_claim(lost)  # the first worker's lease ran out
            outbox_run(first)  # the first one finishes late: its send happened, so it is logged
        assert probe() == [(kept, "kept"), (lost, "lost")]
        assert status(lost)[:2] == ("claimed", 2)  # the done mark of a lost claim is not written
        assert OutboxMessage.objects.get(pk=lost).claimed_until == second.claimed_until
        with pytest.raises(ValueError, match="parameter names"):
            outbox_service._finish(
                second, status="done", last_error="", record=OutboxRecord(sql.SQL("SELECT 1"), {"id": 1})
            )
    finally:
        outbox_service._kinds.pop("test.record", None)


@pytest.mark.django_db
def test_a_concurrent_kind_sends_the_first_alone_then_at_once_and_records_on_the_tasks_thread(in_a):
    task_thread = threading.get_ident()
    sends: list[int] = []
    threads = {"handler": set(), "then": set(), "send": set()}
    at_once = threading.Barrier(3, timeout=10)  # broken (the sends fail) unless 3 are in flight together

    def handler(message):
        threads["handler"].add(threading.get_ident())
        n = message.payload["n"]

        def send():
            threads["send"].add(threading.get_ident())
            sends.append(n)
            if n == 3:
                raise ConnectionError("refused")
            if n:
                at_once.wait()
            return f"sent {n}"

        def then(sent):
            threads["then"].add(threading.get_ident())
            return OutboxRecord(
                statement=sql.SQL("INSERT INTO pg_temp.sent_probe VALUES (%(probe_id)s, %(probe_note)s)"),
                params={"probe_id": message.pk, "probe_note": sent},
            )

        return OutboxSend(send=send, then=then)

    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE sent_probe (message_id bigint, note text)")
    outbox_register(
        "test.concurrent", handler=handler, retry_delays=DELAYS, batch=5, claim_together=True, concurrency=4
    )
    try:
        with time_machine.travel(T0, tick=False):
            ids = [outbox_add(kind="test.concurrent", payload={"n": n}) for n in range(5)]
            with mock.patch.object(outbox_service, "outbox_dispatch_enqueue"):
                result = outbox_process(ids=ids)
    finally:
        outbox_service._kinds.pop("test.concurrent", None)
    assert (result.done, result.failed) == (4, 1)
    assert sends[0] == 0 and sorted(sends) == [0, 1, 2, 3, 4]  # the first went alone
    assert threads["handler"] == threads["then"] == {task_thread}  # the database stays on the task's thread
    assert len(threads["send"] - {task_thread}) >= 3  # the barrier's three, on sender threads
    with connection.cursor() as cursor:
        cursor.execute("SELECT message_id, note FROM pg_temp.sent_probe ORDER BY message_id")
        assert cursor.fetchall() == [(ids[n], f"sent {n}") for n in (0, 1, 2, 4)]
    assert [status(pk)[:2] for pk in ids] == [("done", 1)] * 3 + [("failed", 1), ("done", 1)]
    assert status(ids[3])[2:] == (T0 + DELAYS[0], "ConnectionError: refused")


@pytest.mark.django_db
def test_in_a_concurrent_batch_each_done_mark_is_fenced_by_its_own_claim(in_a):
    def handler(message):
        def then(sent):
            if message.payload["n"] == 2:  # meanwhile its lease ran out and another worker claimed it
                assert outbox_claim(message.pk, now=timezone.now() + timedelta(minutes=2)) is not None
            return None

        return OutboxSend(send=lambda: None, then=then)

    lease = timedelta(minutes=1)
    outbox_register(
        "test.concurrent",
        handler=handler,
        retry_delays=DELAYS,
        lease=lease,
        batch=4,
        claim_together=True,
        concurrency=3,
    )
    try:
        ids = [outbox_add(kind="test.concurrent", payload={"n": n}) for n in range(4)]
        outbox_process(ids=ids)
    finally:
        outbox_service._kinds.pop("test.concurrent", None)
    assert [status(pk)[:2] for pk in ids] == [("done", 1), ("done", 1), ("claimed", 2), ("done", 1)]


def test_concurrent_sends_are_for_kinds_claimed_together_within_their_lease():
    def handler(message):
        return None

    with pytest.raises(ValueError, match="claimed together"):
        outbox_register("test.bad", handler=handler, retry_delays=DELAYS, concurrency=4)
    with pytest.raises(ValueError, match="too short"):  # 1 + 25 rounds of 30 s > 5 minutes
        outbox_register("test.bad", handler=handler, retry_delays=DELAYS, batch=50, claim_together=True, concurrency=2)
    outbox_register("test.ok", handler=handler, retry_delays=DELAYS, batch=50, claim_together=True, concurrency=8)
    outbox_service._kinds.pop("test.ok")
    assert "test.bad" not in outbox_service._kinds
