"""The transactional outbox: every side effect (an invoice's PDF and email, a webhook delivery; next
payment collection, dunning emails, usage alerts) is a row written in the transaction of the change
that causes it, so the effect exists exactly when the change does.

The contract:
- `outbox_add` / `outbox_add_bulk` must run inside that transaction (they refuse otherwise). On
  commit, a `core.outbox_dispatch` task is enqueued with the new ids (the fast path). If the broker
  is down then, the failure is logged and the commit stands: beat's `core.outbox_sweep` (every
  minute, in every tenant) re-finds every message that is due and not being worked on.
- A worker *claims* a message with one conditional UPDATE (pending or failed and due, or claimed
  with an expired lease → claimed, with a lease of the kind's length), runs the kind's handler
  outside any transaction or row lock, then records the outcome only if its claim still holds
  (fenced by the claim's `claimed_until`, which every new claim moves forward).
- Dispatch is therefore **at least once**: a worker killed after the effect and before recording it
  leaves the message to be claimed again once its lease expires. Handlers make that *effectively
  once* by being idempotent on a key of their own: the invoice email is recorded on the invoice
  (`emailed_at`, set by a conditional update) and skipped once there; a webhook carries the message
  id as `webhook-id`, which receivers deduplicate on (Standard Webhooks).
- A handler that raises is retried on its kind's schedule (`retry_delays`: the wait after the 1st,
  2nd, … failed attempt); after the last one the message is `dead` (shown in the admin, where
  "Retry now" revives it). `OutboxGiveUp` makes it dead at once (e.g. HTTP 410 from a webhook).
- Handlers are registered per kind by the app that owns the effect, in its AppConfig.ready(); core
  imports none of them. A worker claims only kinds it has a handler for.
- A handler may return an `OutboxRecord`: a row of its own (a webhook's attempt log) written by
  the same statement as the done mark, so a delivery costs one commit after its send, not two.
- A handler may instead return an `OutboxSend`: its network step (no database) and what to record
  after it. A kind registered with `concurrency` > 1 (webhooks) has a task's claimed messages sent
  that many at a time by this process's sender threads, once the task's first message went alone
  (it proves the target answers: an endpoint that answers 410 is disabled before more are sent).
  The database stays on the task's thread: each message's outcome is still its own conditional
  UPDATE, written as soon as its send is over; the done marks of the sends that finished while the
  previous marks were being written go in one transaction (one commit for several). A worker killed
  mid-batch therefore leaves every message either done (marked), or claimed and sent (posted again
  after the lease: the at-least-once case, which `webhook-id` deduplicates), or claimed and not
  sent (sent once after the lease).
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from threading import Lock
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from psycopg import sql

from core.db import current_schema, raw_execute, tenant_table
from core.faults import fault_point
from core.models import OutboxMessage, OutboxStatus
from core.models.outbox import CLAIMABLE

logger = logging.getLogger(__name__)

DISPATCH_TASK = "core.outbox_dispatch"
DISPATCH_BATCH = 50  # message ids per dispatch task (enqueueing costs ~0.5 ms a task)
DEFAULT_LEASE = timedelta(minutes=5)
# A failed attempt whose next one is due within this is also enqueued with a countdown (the
# sweep's minute would be too coarse for the first retries); later ones are the sweep's.
COUNTDOWN_MAX = timedelta(minutes=5)
# Publishing on commit: one quick retry, so a request never hangs on a dead broker.
_PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}


class OutboxGiveUp(Exception):
    """Raised by a handler when retrying cannot help: the message is dead at once."""


@dataclass(frozen=True)
class OutboxRecord:
    """What a handler that succeeded wants written with the done mark: one data-modifying
    statement (`%(name)s` parameters), run as a CTE of the done mark's UPDATE (one round trip,
    one commit; written even if the claim was lost meanwhile: the effect did happen)."""

    statement: sql.Composable
    params: dict[str, Any]


@dataclass(frozen=True)
class OutboxSend:
    """What a handler returns when its effect is a network call: `send` makes it (in a sender
    thread for a concurrent kind: it must not touch the database) and returns what `then` needs;
    `then` runs on the task's thread, records whatever the send's outcome needs and returns like a
    handler (an OutboxRecord or None), or raises to have the message retried."""

    send: Callable[[], Any]
    then: Callable[[Any], OutboxRecord | None]


Handler = Callable[[OutboxMessage], "OutboxRecord | OutboxSend | None"]
# Runs a task's claimed messages of its kind at once: per message id, None (done) or the exception
# it is retried for (OutboxGiveUp: dead at once), as if its own handler had raised it.
BatchHandler = Callable[[list[OutboxMessage]], dict[int, "Exception | None"]]


@dataclass(frozen=True)
class OutboxKind:
    name: str
    handler: Handler
    retry_delays: tuple[timedelta, ...]
    lease: timedelta = DEFAULT_LEASE
    batch: int = DISPATCH_BATCH  # messages per dispatch task (small where one slow send must not hold many)
    # Claim a task's messages of this kind in one statement (the lease then covers them all, so
    # only for kinds whose batch x worst-case run time stays well inside the lease).
    claim_together: bool = False
    # Sends of a task's claimed messages at once (OutboxSend handlers of claim_together kinds).
    concurrency: int = 1
    # A claim_together kind's handler of the whole claimed chunk (a collection chunk shares its
    # transactions and gateway calls); `handler` still runs a message claimed alone.
    batch_handler: BatchHandler | None = None

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    @property
    def rounds(self) -> int:
        """Handler runs one after another in a task at worst: the first message alone, then the
        rest `concurrency` at a time."""
        return 1 + math.ceil((self.batch - 1) / self.concurrency)


_kinds: dict[str, OutboxKind] = {}


def outbox_register(
    kind: str,
    *,
    handler: Handler,
    retry_delays: Sequence[timedelta],
    lease: timedelta = DEFAULT_LEASE,
    batch: int = DISPATCH_BATCH,
    claim_together: bool = False,
    concurrency: int = 1,
    batch_handler: BatchHandler | None = None,
) -> None:
    """Register the handler of `kind` (from an AppConfig.ready()). `lease` must exceed the
    handler's worst-case run time (its network timeouts): a claim older than that is taken as
    abandoned by a dead worker and claimed again. Messages claimed together share one lease, so
    it must cover the task's runs one after another (30 s each at worst)."""
    if concurrency < 1 or ((concurrency > 1 or batch_handler) and not claim_together):
        raise ValueError(f"{kind}: concurrent sends and batch handlers are for kinds claimed together")
    registered = OutboxKind(
        kind, handler, tuple(retry_delays), lease, batch, claim_together, concurrency, batch_handler
    )
    if claim_together and registered.rounds * 30 > lease.total_seconds():
        raise ValueError(f"{kind}: a lease of {lease} is too short for {batch} messages claimed together")
    _kinds[kind] = registered


def outbox_kind_get(kind: str) -> OutboxKind | None:
    return _kinds.get(kind)


@dataclass(frozen=True)
class OutboxItem:
    kind: str
    payload: dict[str, Any]
    key: str | None = None  # unique per kind: a second item with the same key is not added
    available_at: datetime | None = None  # not before (default: now)


def outbox_add(
    *, kind: str, payload: dict[str, Any], key: str | None = None, available_at: datetime | None = None
) -> int | None:
    """Add one message in the current transaction; its id, or None if `key` was already there."""
    ids = outbox_add_bulk([OutboxItem(kind=kind, payload=payload, key=key, available_at=available_at)])
    return ids[0] if ids else None


def outbox_add_bulk(items: Iterable[OutboxItem]) -> list[int]:
    """Add many messages with one INSERT in the current transaction (a chunk of a billing run
    finalizes 500 invoices); the ids of those added. Dispatched on commit."""
    items = list(items)
    if not items:
        return []
    if not connection.in_atomic_block:
        # Outside the cause's transaction the effect could happen without its cause, or be lost.
        raise RuntimeError("outbox_add must run inside the transaction of the change that causes the effect")
    now = timezone.now()
    rows = [
        {
            "kind": item.kind,
            "key": item.key,
            "payload": item.payload,
            "available_at": (item.available_at or now).isoformat(),
        }
        for item in items
    ]
    with connection.cursor() as cursor:
        # One jsonb parameter unpacked server-side: ~3x the rows/s of executemany (ARCHITECTURE.md).
        cursor.execute(
            """
            INSERT INTO core_outboxmessage (kind, key, payload, status, created_at, available_at, attempts, last_error)
            SELECT r.kind, r.key, r.payload, 'pending', %s, r.available_at, 0, ''
            FROM jsonb_to_recordset(%s::jsonb) AS r(kind text, key text, payload jsonb, available_at timestamptz)
            ON CONFLICT DO NOTHING
            RETURNING id, available_at, kind
            """,
            [now, json.dumps(rows, cls=DjangoJSONEncoder)],
        )
        added = cursor.fetchall()
    due_now = [(row[0], row[2]) for row in added if row[1] <= now]
    if due_now:
        schema = current_schema()
        transaction.on_commit(lambda: outbox_dispatch_enqueue(due_now, schema=schema))
    return [row[0] for row in added]


def _batches(messages: Sequence[tuple[int, str]]) -> list[list[int]]:
    """(id, kind) pairs → lists of ids, one kind each, of at most that kind's batch size."""
    by_kind: dict[str, list[int]] = defaultdict(list)
    for pk, kind in messages:
        by_kind[kind].append(pk)
    batches: list[list[int]] = []
    for kind, ids in by_kind.items():
        size = _kinds[kind].batch if kind in _kinds else DISPATCH_BATCH
        batches.extend(ids[start : start + size] for start in range(0, len(ids), size))
    return batches


def outbox_dispatch_enqueue(
    messages: Sequence[tuple[int, str]], *, schema: str, countdown: float | None = None
) -> bool:
    """Enqueue dispatch tasks for `messages` ((id, kind) pairs) in `schema`, in batches of their
    kind's size. Never raises: the messages are committed, and the sweep finds whatever this could
    not enqueue."""
    try:
        for batch in _batches(messages):
            current_app.send_task(
                DISPATCH_TASK,
                args=[batch],
                headers={"_schema_name": schema},
                countdown=countdown,
                retry=True,
                retry_policy=_PUBLISH_RETRY,
            )
    except Exception:
        logger.warning(
            "outbox: could not enqueue a dispatch; the sweep will pick the messages up",
            extra={"schema": schema, "messages": len(messages)},
            exc_info=True,
        )
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Working a message


@dataclass
class ProcessResult:
    done: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0  # not claimable (done already, claimed by another worker, not due, unknown kind)
    retry_ids: dict[float, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))


_CLAIM_SQL = """
UPDATE {table}
SET status = 'claimed', attempts = attempts + 1,
    claimed_until = %(now)s + make_interval(secs => COALESCE((%(leases)s::jsonb ->> kind)::float8, %(lease)s))
WHERE id = ANY(%(ids)s) AND kind = ANY(%(kinds)s)
  AND ((status IN ('pending', 'failed') AND available_at <= %(now)s)
       OR (status = 'claimed' AND claimed_until < %(now)s))
RETURNING id, kind, key, payload, attempts, created_at, available_at, claimed_until
"""
_FINISH_SQL = """
UPDATE {table}
SET status = %(status)s, last_error = %(last_error)s, done_at = %(done_at)s,
    available_at = COALESCE(%(available_at)s, available_at), claimed_until = NULL
WHERE id = %(id)s AND status = 'claimed' AND claimed_until = %(claimed_until)s
RETURNING id
"""


def outbox_claim(message_id: int, *, now: datetime | None = None) -> OutboxMessage | None:
    """Claim one message for this worker, or None if it is not claimable now."""
    claimed = _claim([message_id], kinds=list(_kinds), now=now)
    return claimed[0] if claimed else None


def _claim(ids: Sequence[int], *, kinds: list[str], now: datetime | None = None) -> list[OutboxMessage]:
    now = now or timezone.now()
    leases = {name: kind.lease.total_seconds() for name, kind in _kinds.items()}
    rows = raw_execute(
        sql.SQL(_CLAIM_SQL).format(table=tenant_table(OutboxMessage._meta.db_table)),
        {
            "now": now,
            "leases": json.dumps(leases),
            "lease": DEFAULT_LEASE.total_seconds(),
            "ids": list(ids),
            "kinds": kinds,
        },
    )
    return [
        OutboxMessage(
            id=pk,
            kind=kind,
            key=key,
            payload=json.loads(payload) if isinstance(payload, str) else payload,
            status=OutboxStatus.CLAIMED,
            attempts=attempts,
            created_at=created_at,
            available_at=available_at,
            claimed_until=claimed_until,
        )
        for pk, kind, key, payload, attempts, created_at, available_at, claimed_until in rows
    ]


def _finish_statement(
    message: OutboxMessage,
    *,
    status: str,
    last_error: str,
    done_at: datetime | None,
    available_at: datetime | None,
    record: OutboxRecord | None,
) -> tuple[sql.Composable, dict[str, Any]]:
    statement: sql.Composable = _finish_sql()
    params: dict[str, Any] = {
        "status": status,
        "last_error": last_error,
        "done_at": done_at,
        "available_at": available_at,
        "id": message.pk,
        "claimed_until": message.claimed_until,
    }
    if record is not None:
        if params.keys() & record.params.keys():
            raise ValueError(f"an outbox record may not use the parameter names {sorted(params)}")
        statement = sql.SQL("WITH record AS ({record}) {finish}").format(record=record.statement, finish=statement)
        params |= record.params
    return statement, params


def _finish_sql() -> sql.Composable:
    return sql.SQL(_FINISH_SQL).format(table=tenant_table(OutboxMessage._meta.db_table))


def _finish(
    message: OutboxMessage,
    *,
    status: str,
    last_error: str,
    done_at: datetime | None = None,
    available_at: datetime | None = None,
    record: OutboxRecord | None = None,
) -> bool:
    """Record the outcome of this worker's claim, if the claim still holds (and the handler's
    record with it)."""
    statement, params = _finish_statement(
        message, status=status, last_error=last_error, done_at=done_at, available_at=available_at, record=record
    )
    return bool(raw_execute(statement, params))


def _outside_transactions() -> None:
    if connection.atomic_blocks and not getattr(connection.atomic_blocks[0], "_from_testcase", False):
        # (The one outer block a test case wraps everything in is allowed, as Django allows it for durable blocks.)
        raise RuntimeError("outbox handlers act outside transactions (no row lock is held while they send)")


def outbox_run(message: OutboxMessage, *, result: ProcessResult | None = None) -> str:
    """Run the handler of a claimed message (its send, if it returns one, inline) and record the
    outcome; the new status."""
    result = result if result is not None else ProcessResult()
    kind = _kinds[message.kind]
    _outside_transactions()
    try:
        outcome = kind.handler(message)
        if isinstance(outcome, OutboxSend):
            outcome = outcome.then(outcome.send())
    except Exception as exc:  # noqa: BLE001 (any failure of a handler is retried on its schedule)
        return _failed(message, kind, exc, result)
    fault_point("outbox.after_handle")
    _finish(message, status=OutboxStatus.DONE, last_error="", done_at=timezone.now(), record=outcome)
    result.done += 1
    return OutboxStatus.DONE


def _failed(message: OutboxMessage, kind: OutboxKind, exc: Exception, result: ProcessResult) -> str:
    """Record a failed run: dead at once (OutboxGiveUp), after the last attempt, or retried on the
    kind's schedule."""
    now = timezone.now()
    if isinstance(exc, OutboxGiveUp):
        _finish(message, status=OutboxStatus.DEAD, last_error=_error_text(exc), done_at=now)
        result.dead += 1
        logger.warning("outbox: message given up", extra={"outbox_id": message.pk, "kind": message.kind})
        return OutboxStatus.DEAD
    if message.attempts >= kind.max_attempts:
        _finish(message, status=OutboxStatus.DEAD, last_error=_error_text(exc), done_at=now)
        result.dead += 1
        logger.warning(
            "outbox: message dead after its last attempt",
            extra={"outbox_id": message.pk, "kind": message.kind, "attempts": message.attempts},
        )
        return OutboxStatus.DEAD
    delay = kind.retry_delays[message.attempts - 1]
    _finish(message, status=OutboxStatus.FAILED, last_error=_error_text(exc), available_at=now + delay)
    result.failed += 1
    if delay <= COUNTDOWN_MAX:
        result.retry_ids[delay.total_seconds()].append((message.pk, message.kind))
    logger.info(
        "outbox: attempt failed, retry scheduled",
        extra={"outbox_id": message.pk, "kind": message.kind, "attempt": message.attempts, "in": str(delay)},
    )
    return OutboxStatus.FAILED


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


_senders: ThreadPoolExecutor | None = None
_senders_size = 0
_senders_lock = Lock()


def _sender_pool(size: int) -> ThreadPoolExecutor:
    """This process's sender threads, started on first use (so after a prefork worker's fork)."""
    global _senders, _senders_size
    with _senders_lock:
        if _senders is None or _senders_size < size:
            _senders = ThreadPoolExecutor(max_workers=size, thread_name_prefix="outbox-send")
            _senders_size = size
        return _senders


def _run_concurrently(messages: list[OutboxMessage], kind: OutboxKind, result: ProcessResult) -> None:
    """Run claimed messages of a concurrent kind: each handler on this thread, the sends it returns
    `kind.concurrency` at a time on sender threads; each outcome recorded here as its send ends,
    the done marks of the sends that ended together in one transaction."""
    pool = _sender_pool(kind.concurrency)
    sending: dict[Future[Any], tuple[OutboxMessage, OutboxSend]] = {}
    ready: list[tuple[OutboxMessage, OutboxRecord | None]] = []
    try:
        for message in messages:
            try:
                outcome = kind.handler(message)
            except Exception as exc:  # noqa: BLE001 (retried on its schedule)
                _failed(message, kind, exc, result)
                continue
            if isinstance(outcome, OutboxSend):
                sending[pool.submit(outcome.send)] = (message, outcome)
            else:
                ready.append((message, outcome))
        _done_many(ready, result)
        while sending:
            ended, _ = wait(sending, return_when=FIRST_COMPLETED)
            ready = []
            for future in ended:
                message, outcome = sending.pop(future)
                try:
                    ready.append((message, outcome.then(future.result())))
                except Exception as exc:  # noqa: BLE001 (retried on its schedule)
                    _failed(message, kind, exc, result)
                    continue
                fault_point("outbox.after_handle")
            _done_many(ready, result)
    finally:
        # Interrupted (a time limit, a lost database): sends not yet started are not made, those
        # running end unrecorded; their claims run out and the sweep takes the messages over.
        for future in sending:
            future.cancel()


def _run_batch(messages: list[OutboxMessage], kind: OutboxKind, result: ProcessResult) -> None:
    """Run claimed messages through their kind's batch handler; the done marks together, each
    failure on its own schedule. A handler that raises fails the whole chunk (retried)."""
    _outside_transactions()
    try:
        outcomes = kind.batch_handler(messages)  # type: ignore[misc]
    except Exception as exc:  # noqa: BLE001 (any failure of a handler is retried on its schedule)
        outcomes = dict.fromkeys((m.pk for m in messages), exc)
    fault_point("outbox.after_handle")
    done: list[tuple[OutboxMessage, OutboxRecord | None]] = []
    for message in messages:
        error = outcomes.get(message.pk)
        if error is None:
            done.append((message, None))
        else:
            _failed(message, kind, error, result)
    if done:
        _done_many(done, result)


def _done_many(finished: list[tuple[OutboxMessage, OutboxRecord | None]], result: ProcessResult) -> None:
    """The done marks (with their records) of handlers that succeeded: each its own conditional
    UPDATE as `_finish` writes it, sent together (one round trip) in one transaction."""
    if len(finished) == 1:
        message, record = finished[0]
        _finish(message, status=OutboxStatus.DONE, last_error="", done_at=timezone.now(), record=record)
        result.done += 1
        return
    groups: list[tuple[sql.Composable, list[dict[str, Any]]]] = []
    now = timezone.now()
    for message, record in finished:
        statement, params = _finish_statement(
            message, status=OutboxStatus.DONE, last_error="", done_at=now, available_at=None, record=record
        )
        for known, params_list in groups:
            if known == statement:
                params_list.append(params)
                break
        else:
            groups.append((statement, [params]))
    if groups:
        connection.ensure_connection()
        with transaction.atomic(), connection.connection.cursor() as cursor:
            for statement, params_list in groups:
                cursor.executemany(statement, params_list)
    result.done += len(finished)


def outbox_process(*, ids: Sequence[int]) -> ProcessResult:
    """Claim and run each of `ids` in turn: the messages of kinds that say so together (one
    statement for the task's batch: a dispatch task carries one kind; sent concurrently after the
    first if the kind says so), then the others one claim at a time (a lease then covers one
    handler run). Retries due within COUNTDOWN_MAX are enqueued with a countdown."""
    result = ProcessResult()
    pending = list(ids)
    together_kinds = [name for name, kind in _kinds.items() if kind.claim_together]
    if together_kinds and len(pending) > 1:
        together = {m.pk: m for m in _claim(pending, kinds=together_kinds)}
        claimed = [together[pk] for pk in pending if pk in together]  # in the task's order
        by_kind: dict[str, list[OutboxMessage]] = defaultdict(list)
        for message in claimed:
            by_kind[message.kind].append(message)
        for name, messages in by_kind.items():
            kind = _kinds[name]
            if kind.batch_handler is not None and len(messages) > 1:
                _run_batch(messages, kind, result)
                continue
            outbox_run(messages[0], result=result)  # alone: it proves the target answers
            if kind.concurrency > 1 and len(messages) > 2:
                _outside_transactions()
                _run_concurrently(messages[1:], kind, result)
            else:
                for message in messages[1:]:
                    outbox_run(message, result=result)
        pending = [pk for pk in pending if pk not in together]  # tried one by one (skipped if not due)
    while pending:
        claimed_one = outbox_claim(pending.pop(0))
        if claimed_one is None:
            result.skipped += 1
            continue
        outbox_run(claimed_one, result=result)
    for seconds, retry in result.retry_ids.items():
        outbox_dispatch_enqueue(retry, schema=current_schema(), countdown=seconds)
    return result


# ---------------------------------------------------------------------------------------------
# The sweep, and what staff do by hand


@dataclass
class SweepResult:
    enqueued: int = 0
    pruned: int = 0


def outbox_due(*, now: datetime, limit: int) -> list[tuple[int, str]]:
    """Messages whose dispatch was lost: due for longer than the fast path needs, or claimed by a
    worker whose lease ran out (killed, or the broker lost its task)."""
    grace = timedelta(seconds=settings.OUTBOX_SWEEP_GRACE_SECONDS)
    lost = Q(status__in=CLAIMABLE, available_at__lte=now - grace)
    abandoned = Q(status=OutboxStatus.CLAIMED, claimed_until__lt=now)
    return list(
        OutboxMessage.objects.filter(lost | abandoned).order_by("available_at").values_list("id", "kind")[:limit]
    )


def outbox_sweep(*, now: datetime | None = None, limit: int = 10_000) -> SweepResult:
    """Beat runs this every minute in every tenant: enqueue what is due and was not dispatched,
    and delete finished messages past OUTBOX_RETENTION_DAYS (their delivery log stays)."""
    now = now or timezone.now()
    result = SweepResult()
    due = outbox_due(now=now, limit=limit)
    if due and outbox_dispatch_enqueue(due, schema=current_schema()):
        result.enqueued = len(due)
    cutoff = now - timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    old = OutboxMessage.objects.filter(status__in=[OutboxStatus.DONE, OutboxStatus.DEAD], done_at__lt=cutoff)
    result.pruned, _ = OutboxMessage.objects.filter(pk__in=old.values("pk")[:limit]).delete()
    if due:
        logger.info("outbox sweep", extra={"enqueued": result.enqueued, "pruned": result.pruned})
    return result


def outbox_retry(*, ids: Sequence[int]) -> int:
    """ "Retry now": failed, dead or waiting messages are due at once with a fresh schedule (a dead
    one starts its attempts over); done or claimed ones are left alone. The number made due."""
    now = timezone.now()
    with transaction.atomic():
        count = OutboxMessage.objects.filter(pk__in=ids, status__in=[*CLAIMABLE, OutboxStatus.DEAD]).update(
            status=OutboxStatus.PENDING, attempts=0, available_at=now, claimed_until=None, done_at=None
        )
        schema = current_schema()
        pending = OutboxMessage.objects.filter(pk__in=ids, status=OutboxStatus.PENDING)
        messages = list(pending.values_list("id", "kind"))
        transaction.on_commit(lambda: outbox_dispatch_enqueue(messages, schema=schema))
    return count


def outbox_redeliver(*, message_id: int) -> bool:
    """Run a finished (done or dead) message again, e.g. a webhook replayed by hand: it keeps its
    id (so its `webhook-id`) and starts a fresh schedule. False if it is not finished (waiting or
    being worked on already: it will run anyway) or no longer kept."""
    now = timezone.now()
    with transaction.atomic():
        finished = OutboxMessage.objects.filter(pk=message_id, status__in=[OutboxStatus.DONE, OutboxStatus.DEAD])
        kind = finished.values_list("kind", flat=True).first()
        count = finished.update(
            status=OutboxStatus.PENDING, attempts=0, available_at=now, claimed_until=None, done_at=None
        )
        if count:
            assert kind is not None  # the row it just updated has one
            schema = current_schema()
            transaction.on_commit(lambda: outbox_dispatch_enqueue([(message_id, kind)], schema=schema))
    return bool(count)
