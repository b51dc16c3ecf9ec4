"""Collecting an invoice from the organization's default payment method.

Finalizing an invoice with an amount due, for an organization collected automatically, writes a
`payments.collect` outbox message in the finalizing transaction (invoicing.hooks). Its handler:

1. under the invoice's lock, takes the payment in flight for the invoice, or opens payment number
   n+1 (idempotency key `inv<id>-<n>`) when there is none and nothing succeeded;
2. outside any lock, drives it at the gateway in two steps, each call written as a
   PaymentAttempt *before* it is made (`started`) and finished after: create (moves no money),
   record its id, confirm off session, record the answer (payments.services.ledger);
3. a payment that already saw a confirm (a process killed in it, or the gateway down) asks the
   gateway first (`charge_get`) and confirms again only if the charge is still unconfirmed, with
   the same key: never a second charge.

The gateway down: the attempt is `errored`, the handler raises, and the outbox retries on its
schedule with the same payment. A decline is final for the payment (dunning decides about a
next one)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from threading import Lock
from typing import TypeVar

from django.db import transaction
from django.utils import timezone
from psycopg import sql

from accounts.audit import audit_actor, audit_event, audit_events_bulk
from core.db import raw_execute, rows_update, tenant_table
from core.errors import DomainError
from core.faults import fault_point
from core.models import OutboxMessage
from core.services.outbox import OutboxGiveUp, OutboxItem, outbox_add, outbox_add_bulk, outbox_register
from invoicing.models import Invoice, InvoiceStatus
from invoicing.services.invoice import invoice_lock
from payments.gateways import gateway_get
from payments.gateways.base import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    Failure,
    FailureCode,
    GatewayDown,
    GatewayError,
    PaymentMethodInfo,
)
from payments.models import CollectionMethod, Payment, PaymentAttempt, PaymentCustomer, PaymentStatus
from payments.services.ledger import payment_result_record, payment_results_record

logger = logging.getLogger(__name__)

COLLECT_KIND = "payments.collect"
# Gateway outages are usually minutes: retry soon, then spread over about a day.
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180, 360, 720))
# Messages claimed together share one lease: a chunk's calls, GATEWAY_CONCURRENCY at a time, with
# their 20 s timeouts, a create and a confirm each (a recovery too, one by one), stay well inside it.
LEASE = timedelta(minutes=15)
COLLECT_BATCH = 50  # messages per dispatch task, collected together
GATEWAY_CONCURRENCY = 8  # gateway calls at once per process (threads: the calls wait on the network)
T = TypeVar("T")
IN_FLIGHT = (PaymentStatus.PENDING, PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION)


def collections_enqueue(invoices: Sequence[Invoice]) -> list[int]:
    """In the finalizing transaction (invoicing.hooks): one collection per open invoice with an
    amount due whose organization is collected automatically and has a default method to charge
    (an organization without one is asked to pay from the portal; no message is written for it,
    so a billing run of customers who pay by transfer adds nothing to the outbox)."""
    due = [i for i in invoices if i.status == InvoiceStatus.OPEN and i.amount_due > 0]
    if not due:
        return []
    chargeable = set(
        PaymentCustomer.objects.filter(
            organization_id__in={i.organization_id for i in due}, collection_method=CollectionMethod.AUTOMATIC
        )
        .exclude(default_payment_method_id="")
        .values_list("organization_id", flat=True)
    )
    return outbox_add_bulk(
        OutboxItem(kind=COLLECT_KIND, key=f"collect:{i.pk}", payload={"invoice_id": i.pk})
        for i in due
        if i.organization_id in chargeable
    )


def _payment_new(
    *, invoice: Invoice, payer: PaymentCustomer, number: int, amount: Decimal, method: PaymentMethodInfo | None = None
) -> Payment:
    payment = _payment_build(invoice=invoice, payer=payer, number=number, amount=amount, method=method)
    payment.save(force_insert=True)
    audit_event(payment, event="payment.created", amount=str(amount), currency=invoice.currency, number=number)
    return payment


def _payment_build(
    *, invoice: Invoice, payer: PaymentCustomer, number: int, amount: Decimal, method: PaymentMethodInfo | None = None
) -> Payment:
    return Payment(
        invoice=invoice,
        organization_id=invoice.organization_id,
        number=number,
        idempotency_key=f"inv{invoice.pk}-{number}",
        gateway=payer.method_gateway(str(method.type)) if method else payer.default_gateway,
        payment_method_id=method.id if method else payer.default_payment_method_id,
        method_type=str(method.type) if method else payer.default_method_type,
        amount=amount,
        currency=invoice.currency,
    )


def payment_retry_open(*, invoice: Invoice) -> Payment | None:
    """Dunning's retry of one invoice, under the caller's lock of `invoice`
    (invoicing.services.invoice_lock): `payments_retry_open_bulk`'s case of one, its collection
    message included (in the caller's transaction). None when the invoice is not awaiting
    payment, a payment is in flight, or there is no method to charge."""
    return payments_retry_open_bulk([invoice.pk]).get(invoice.pk)


def _invoices_locked(
    invoice_ids: Sequence[int],
) -> tuple[list[Invoice], dict[int, PaymentCustomer], dict[int, Payment]]:
    """The invoices locked with one statement, in id order (as every path locks them), with their
    payers by organization and their last payments by invoice, one statement each: what a chunk's
    collection and a chunk's retries both decide from. In the caller's transaction."""
    invoices = list(
        Invoice.objects.select_for_update(of=("self",))
        .select_related("organization")
        .filter(pk__in=set(invoice_ids))
        .order_by("pk")
    )
    payers = {
        c.organization_id: c
        for c in PaymentCustomer.objects.filter(organization_id__in={i.organization_id for i in invoices})
    }
    last = {
        p.invoice_id: p
        for p in Payment.objects.select_related("organization")
        .filter(invoice__in=invoices)
        .order_by("invoice_id", "-number")
        .distinct("invoice_id")
    }
    return invoices, payers, last


def payments_retry_open_bulk(invoice_ids: Sequence[int]) -> dict[int, Payment]:
    """Dunning's retries of many invoices, in the caller's transaction: the invoices locked with
    one statement (in id order, as every other path locks them; a caller holding the locks
    already takes them again at no cost), their payers and last payments read with one each,
    then payment n+1 on the default method (after failed ones, or a partial payment) for each
    invoice awaiting payment with nothing in flight and a method to charge, and their audit rows
    and the collection messages that drive them (`collection_enqueue`'s, keyed per payment)
    written with one INSERT each. The opened payments by invoice; the others are left out."""
    if not invoice_ids:
        return {}
    invoices, payers, last = _invoices_locked(invoice_ids)
    new: list[Payment] = []
    for invoice in invoices:
        payer = payers.get(invoice.organization_id)
        if payer is None or not payer.chargeable:
            continue
        if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE) or invoice.amount_due <= 0:
            continue
        previous = last.get(invoice.pk)
        if previous is not None and previous.status in IN_FLIGHT:
            continue
        number = previous.number + 1 if previous else 1
        new.append(_payment_build(invoice=invoice, payer=payer, number=number, amount=invoice.amount_due))
    if not new:
        return {}
    Payment.objects.bulk_create(new)
    audit_events_bulk(
        new,
        event="payment.created",
        details=lambda p: {"amount": str(p.amount), "currency": p.currency, "number": p.number},
    )
    outbox_add_bulk(
        OutboxItem(kind=COLLECT_KIND, key=f"collect:{p.invoice_id}:{p.number}", payload={"invoice_id": p.invoice_id})
        for p in new
    )
    return {p.invoice_id: p for p in new}


def collection_enqueue(*, invoice_id: int, number: int) -> None:
    """In the transaction that opened payment `number`: the collection message that drives it
    (the same handler, retries and crash recovery as the first charge)."""
    outbox_add(kind=COLLECT_KIND, key=f"collect:{invoice_id}:{number}", payload={"invoice_id": invoice_id})


def _attempt_start(payment: Payment, step: str) -> PaymentAttempt:
    # Committed before the call: a process that dies in the call leaves it `started`.
    return PaymentAttempt.objects.create(payment=payment, step=step, started_at=timezone.now())


def _attempts_start(payments: Sequence[Payment], step: str) -> list[PaymentAttempt]:
    # One INSERT, committed before the calls: a process that dies in them leaves them `started`.
    now = timezone.now()
    return PaymentAttempt.objects.bulk_create([PaymentAttempt(payment=p, step=step, started_at=now) for p in payments])


def _attempt_end(attempt: PaymentAttempt, *, outcome: str, status: str = "", failure: str = "", message: str = ""):
    attempt.outcome, attempt.status_after, attempt.failure_code = outcome, status, failure
    attempt.message, attempt.finished_at = message[:500], timezone.now()


_ATTEMPT_FIELDS = ["outcome", "status_after", "failure_code", "message", "finished_at"]


def _attempt_finish(attempt: PaymentAttempt, **outcome) -> None:
    _attempt_end(attempt, **outcome)
    attempt.save(update_fields=_ATTEMPT_FIELDS)


_callers: ThreadPoolExecutor | None = None
_callers_lock = Lock()


def _concurrently(call: Callable[[Payment], T], payments: Sequence[Payment]) -> list[T | Exception]:
    """`call` for each payment, GATEWAY_CONCURRENCY at a time on this process's caller threads
    (started on first use, so after a prefork worker's fork): each result, or the exception it
    raised, in order. The calls touch no database (the gateway SDK's client is thread-safe)."""
    global _callers

    def guarded(payment: Payment) -> T | Exception:
        try:
            return call(payment)
        except Exception as error:  # noqa: BLE001 (handed back to the caller, payment by payment)
            return error

    if len(payments) == 1:
        return [guarded(payments[0])]
    with _callers_lock:
        if _callers is None:
            _callers = ThreadPoolExecutor(max_workers=GATEWAY_CONCURRENCY, thread_name_prefix="payments-gateway")
    return list(_callers.map(guarded, payments))


def _charge_request(payment: Payment, payer: PaymentCustomer) -> ChargeRequest:
    return ChargeRequest(
        amount=payment.money,
        customer_id=payer.customer_at(payment.gateway),
        payment_method_id=payment.payment_method_id,
        method_type=payment.method_type,
        idempotency_key=payment.idempotency_key,
        description=f"Invoice {payment.invoice.number}",
        metadata={"invoice": payment.invoice.number or "", "payment": str(payment.pk)},
    )


def _error_fields(error: GatewayError) -> dict:
    return {"outcome": PaymentAttempt.Outcome.ERRORED, "failure": error.code, "message": str(error)}


def _failure_result(payment: Payment, error: GatewayError) -> ChargeResult:
    """The gateway refused the request itself (not a decline): the payment failed for good."""
    return ChargeResult(
        id=payment.gateway_payment_id or "",
        status=ChargeStatus.FAILED,
        amount=payment.money,
        failure=Failure(FailureCode("processing_error"), str(error), "gateway_error"),
    )


def payment_drive(*, payment_id: int, payer: PaymentCustomer | None = None) -> Payment:
    """Take the payment one step further at the gateway (see the module docstring). Raises
    GatewayDown (recorded as an errored attempt) for the caller to retry later."""
    payment = Payment.objects.select_related("organization", "invoice").get(pk=payment_id)
    payers = {payer.organization_id: payer} if payer is not None else None
    outcome = _payments_drive([payment], payers=payers)[payment.pk]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _payments_drive(
    payments: Sequence[Payment], *, payers: dict[int, PaymentCustomer] | None = None
) -> dict[int, Payment | Exception]:
    """Take each payment one step further at the gateway, together: each step's attempts written
    with one INSERT before its calls, the calls made concurrently, their answers recorded with one
    transaction (the ledger's `payment_results_record` for the confirms). Per payment: the payment
    as recorded, or the exception (GatewayDown, recorded as an errored attempt) that its caller
    raises to retry it later."""
    out: dict[int, Payment | Exception] = {p.pk: p for p in payments if p.status != PaymentStatus.PENDING}
    pending = [p for p in payments if p.status == PaymentStatus.PENDING]  # others: webhooks take it from here
    if not pending:
        return out
    if payers is None:
        payers = {}
    missing = {p.organization_id for p in pending} - payers.keys()
    if missing:
        payers |= {c.organization_id: c for c in PaymentCustomer.objects.filter(organization_id__in=missing)}
    gateways: dict[str, object] = {}
    for payment in pending:
        if payment.gateway not in gateways:
            try:
                gateways[payment.gateway] = gateway_get(payment.gateway)
            except GatewayError as error:
                gateways[payment.gateway] = error
    live = []
    for payment in pending:
        gateway = gateways[payment.gateway]
        if isinstance(gateway, Exception):
            out[payment.pk] = gateway
        else:
            live.append(payment)
    failed: list[tuple[Payment, GatewayError]] = []  # refused by the gateway: failed for good

    # 1. Create (moves no money), for those without an intent yet.
    to_create = [p for p in live if p.gateway_payment_id is None]
    created_now: set[int] = set()
    if to_create:
        attempts = _attempts_start(to_create, PaymentAttempt.Step.CREATE)
        answers = _concurrently(
            lambda p: gateways[p.gateway].charge_create(_charge_request(p, payers[p.organization_id])), to_create
        )
        ids: dict[int, str] = {}
        for payment, attempt, answer in zip(to_create, attempts, answers, strict=True):
            if isinstance(answer, GatewayError):
                _attempt_end(attempt, **_error_fields(answer))
                if isinstance(answer, GatewayDown):
                    out[payment.pk] = answer
                else:
                    failed.append((payment, answer))
            elif isinstance(answer, Exception):
                out[payment.pk] = answer
            else:
                fault_point("payments.after_create")
                _attempt_end(attempt, outcome=PaymentAttempt.Outcome.DONE, status=answer.status)
                ids[payment.pk] = answer.id
        with transaction.atomic():
            recorded = _gateway_ids_record(ids)
            rows_update(PaymentAttempt, attempts, _ATTEMPT_FIELDS)
        for payment in to_create:
            if payment.pk in recorded:
                payment.gateway_payment_id = ids[payment.pk]
                created_now.add(payment.pk)
        lost = [p for p in to_create if p.pk in ids and p.pk not in recorded]
        if lost:  # another run recorded them first: go by what it recorded
            stored = dict(Payment.objects.filter(pk__in=[p.pk for p in lost]).values_list("pk", "gateway_payment_id"))
            for payment in lost:
                payment.gateway_payment_id = stored[payment.pk]
    live = [p for p in live if p.pk not in out and p.gateway_payment_id is not None]

    # 2. A payment that already saw a confirm may have been charged: ask before asking again.
    # (No confirm can have been sent for an intent created just now: a confirm needs its id.)
    maybe = [p.pk for p in live if p.pk not in created_now]
    confirmed_before = set(
        PaymentAttempt.objects.filter(payment_id__in=maybe, step=PaymentAttempt.Step.CONFIRM).values_list(
            "payment_id", flat=True
        )
        if maybe
        else ()
    )
    results: list[tuple[int, ChargeResult, None]] = []
    to_confirm = []
    for payment in live:
        if payment.pk not in confirmed_before:
            to_confirm.append(payment)
            continue
        gateway = gateways[payment.gateway]
        attempt = _attempt_start(payment, PaymentAttempt.Step.RECOVER)
        try:
            state = gateway.charge_get(charge_id=payment.gateway_payment_id)
        except GatewayDown as error:
            _attempt_finish(attempt, **_error_fields(error))
            out[payment.pk] = error
            continue
        _attempt_finish(attempt, outcome=PaymentAttempt.Outcome.DONE, status=state.status)
        if state.status != ChargeStatus.CREATED:
            results.append((payment.pk, state, None))
        else:
            to_confirm.append(payment)

    # 3. Confirm off session, with the same key: the gateway charges once per key.
    attempts = _attempts_start(to_confirm, PaymentAttempt.Step.CONFIRM) if to_confirm else []
    answers = _concurrently(
        lambda p: gateways[p.gateway].charge_confirm(charge_id=p.gateway_payment_id, idempotency_key=p.idempotency_key),
        to_confirm,
    )
    for payment, attempt, answer in zip(to_confirm, attempts, answers, strict=True):
        if isinstance(answer, GatewayError):
            _attempt_end(attempt, **_error_fields(answer))
            if isinstance(answer, GatewayDown):
                out[payment.pk] = answer
            else:
                failed.append((payment, answer))
        elif isinstance(answer, Exception):
            out[payment.pk] = answer
        else:
            fault_point("payments.after_confirm")
            _attempt_end(
                attempt,
                outcome=PaymentAttempt.Outcome.DECLINED
                if answer.status == ChargeStatus.FAILED
                else PaymentAttempt.Outcome.DONE,
                status=answer.status,
                failure=answer.failure.code if answer.failure else "",
                message=answer.failure.message if answer.failure else "",
            )
            results.append((payment.pk, answer, None))
    results += [(payment.pk, _failure_result(payment, error), None) for payment, error in failed]
    with transaction.atomic():
        rows_update(PaymentAttempt, attempts, _ATTEMPT_FIELDS)
        if results:
            payment_results_record(results)
    done = [pk for pk, _, _ in results]
    for payment in Payment.objects.select_related("organization", "invoice").filter(pk__in=done):
        out[payment.pk] = payment
    for payment in live:
        out.setdefault(payment.pk, payment)
    return out


def _gateway_ids_record(ids: dict[int, str]) -> set[int]:
    """Record each payment's intent id unless one is recorded already (a concurrent run); the
    payments recorded here."""
    if not ids:
        return set()
    rows = raw_execute(
        sql.SQL(
            "UPDATE {table} AS t SET gateway_payment_id = v.gid FROM jsonb_to_recordset(%(rows)s::jsonb)"
            " AS v(id bigint, gid text) WHERE t.id = v.id AND t.gateway_payment_id IS NULL RETURNING t.id"
        ).format(table=tenant_table(Payment._meta.db_table)),
        {"rows": json.dumps([{"id": pk, "gid": gid} for pk, gid in ids.items()])},
    )
    return {row[0] for row in rows}


def invoice_collect(*, invoice_id: int) -> Payment | None:
    """Charge the organization's default method for the invoice (the outbox handler's body)."""
    outcome = invoices_collect([invoice_id])[invoice_id]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def invoices_collect(invoice_ids: Sequence[int]) -> dict[int, Payment | Exception | None]:
    """Collect many invoices together (a claimed chunk of collection messages): under the
    invoices' locks, in one transaction, each takes the payment in flight for it, or opens payment
    1 when there is none and nothing was tried yet (payments and their audit rows with one INSERT
    each); then the payments are driven together (`_payments_drive`). Per invoice: its payment,
    None (nothing to collect: no method, not awaiting payment, or its last payment failed:
    retrying is dunning's call), or the exception its message is retried for."""
    out: dict[int, Payment | Exception | None] = {}
    with transaction.atomic():
        invoices, payers, last = _invoices_locked(invoice_ids)
        drive: list[Payment] = []
        new: list[Payment] = []
        for invoice in invoices:
            payer = payers.get(invoice.organization_id)
            if payer is None or not payer.chargeable:
                logger.info("payments: no default payment method; the invoice waits", extra={"invoice": invoice.pk})
                continue
            previous = last.get(invoice.pk)
            if previous is not None and previous.status in IN_FLIGHT:
                previous.invoice = invoice
                drive.append(previous)
            elif invoice.status == InvoiceStatus.OPEN and invoice.amount_due > 0 and previous is None:
                new.append(_payment_build(invoice=invoice, payer=payer, number=1, amount=invoice.amount_due))
        if new:
            Payment.objects.bulk_create(new)
            audit_events_bulk(
                new,
                event="payment.created",
                details=lambda p: {"amount": str(p.amount), "currency": p.currency, "number": p.number},
            )
            drive += new
    out = dict.fromkeys(invoice_ids)
    driven = _payments_drive(drive, payers=payers) if drive else {}
    for payment in drive:
        out[payment.invoice_id] = driven[payment.pk]
    return out


def invoice_pay(*, actor, invoice: Invoice, payment_method_id: str = "") -> Payment:
    """Pay an open invoice now (the API's `invoices/<id>/pay`, the portal's pay-now): the payment
    in flight if there is one, else a new one after failed ones, charging the default method or
    `payment_method_id`, a method the gateway holds for this organization (just saved through the
    gateway's element, say)."""
    from payments.services.methods import payment_method_owned_get

    payer = PaymentCustomer.objects.filter(organization_id=invoice.organization_id).first()
    method = None
    if payment_method_id:
        method = payment_method_owned_get(organization=invoice.organization, payment_method_id=payment_method_id)
    elif payer is None or not payer.chargeable:
        raise DomainError("The organization has no default payment method.", code="no_payment_method", status_code=409)
    with audit_actor(actor), transaction.atomic():
        locked = invoice_lock(invoice.pk)
        last = Payment.objects.filter(invoice=locked).order_by("-number").first()
        if last is not None and last.status in IN_FLIGHT:
            payment = last
        elif locked.status != InvoiceStatus.OPEN or locked.amount_due <= 0:
            raise DomainError(
                f"{locked} is {locked.status}, not awaiting payment.", code="invoice_not_open", status_code=409
            )
        else:
            payment = _payment_new(
                invoice=locked,
                payer=payer,
                number=(last.number + 1 if last else 1),
                amount=locked.amount_due,
                method=method,
            )
    return payment_drive(payment_id=payment.pk)


def payment_action_get(*, payment: Payment) -> ChargeResult:
    """The gateway's state of a payment waiting for the customer (3-D Secure), with what its own
    browser UI needs to finish it (the charge's client secret)."""
    return gateway_get(payment.gateway).charge_get(charge_id=payment.gateway_payment_id)


def payment_refresh(*, payment_id: int) -> Payment:
    """After the customer acted in the gateway's UI: ask the gateway and record what it says (the
    browser's word is never taken; the webhook, if it comes first or later, changes nothing)."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.status in IN_FLIGHT and payment.gateway_payment_id:
        payment_result_record(payment_id=payment.pk, result=payment_action_get(payment=payment))
        payment.refresh_from_db()
    return payment


def payment_retry_enqueue(*, invoice_id: int) -> Payment:
    """After `invoice_pay` met the gateway down: its payment (pending, the attempt errored) is
    handed to the outbox, whose collection drives the payment in flight with the same key. Keyed
    per payment, so asking twice enqueues once."""
    with transaction.atomic():
        payment = (
            Payment.objects.filter(invoice_id=invoice_id)
            .order_by("-number")
            .select_related("invoice", "organization")
            .first()
        )
        outbox_add(kind=COLLECT_KIND, key=f"collect:{invoice_id}:{payment.number}", payload={"invoice_id": invoice_id})
    return payment


def _handle(message: OutboxMessage) -> None:
    _raise_for(lambda invoice_id: invoice_collect(invoice_id=invoice_id), message.payload["invoice_id"])


def _raise_for(collect: Callable[[int], object], invoice_id: int) -> None:
    try:
        outcome = collect(invoice_id)
        if isinstance(outcome, Exception):
            raise outcome
    except GatewayDown:
        raise  # retried on the kind's schedule, with the same payment and key
    except GatewayError as error:
        if error.code == "gateway_not_configured":
            raise OutboxGiveUp(str(error)) from error
        raise


def _handle_many(messages: list[OutboxMessage]) -> dict[int, Exception | None]:
    """A claimed chunk of collection messages, collected together (`invoices_collect`): per
    message, None when done, or the exception it is retried for (or given up on)."""
    outcomes = invoices_collect([m.payload["invoice_id"] for m in messages])
    out: dict[int, Exception | None] = {}
    for message in messages:
        try:
            _raise_for(outcomes.__getitem__, message.payload["invoice_id"])
        except Exception as error:  # noqa: BLE001 (recorded on its message by the outbox)
            out[message.pk] = error
        else:
            out[message.pk] = None
    return out


def collection_register() -> None:
    outbox_register(
        COLLECT_KIND,
        handler=_handle,
        retry_delays=RETRY_DELAYS,
        lease=LEASE,
        batch=COLLECT_BATCH,
        claim_together=True,
        concurrency=GATEWAY_CONCURRENCY,
        batch_handler=_handle_many,
    )
