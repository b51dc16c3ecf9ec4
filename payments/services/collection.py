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

import logging
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_actor, audit_event
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
    GatewayDown,
    GatewayError,
    PaymentMethodInfo,
)
from payments.models import CollectionMethod, Payment, PaymentAttempt, PaymentCustomer, PaymentStatus
from payments.services.ledger import payment_result_record

logger = logging.getLogger(__name__)

COLLECT_KIND = "payments.collect"
# Gateway outages are usually minutes: retry soon, then spread over about a day.
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180, 360, 720))
LEASE = timedelta(minutes=5)  # well above two gateway calls with their 20 s timeouts
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


def _payment_open(invoice_id: int, *, payer: PaymentCustomer) -> Payment | None:
    """The payment to drive for this invoice: the one in flight, else a new one (None when the
    invoice is not awaiting payment, or its last payment failed: retrying is dunning's call)."""
    with transaction.atomic():
        invoice = invoice_lock(invoice_id)
        last = Payment.objects.filter(invoice=invoice).order_by("-number").first()
        if last is not None and last.status in IN_FLIGHT:
            return last
        if invoice.status != InvoiceStatus.OPEN or invoice.amount_due <= 0:
            return None
        if last is not None:
            return None
        return _payment_new(invoice=invoice, payer=payer, number=1, amount=invoice.amount_due)


def _payment_new(
    *, invoice: Invoice, payer: PaymentCustomer, number: int, amount: Decimal, method: PaymentMethodInfo | None = None
) -> Payment:
    payment = Payment.objects.create(
        invoice=invoice,
        organization_id=invoice.organization_id,
        number=number,
        idempotency_key=f"inv{invoice.pk}-{number}",
        gateway=payer.gateway,
        payment_method_id=method.id if method else payer.default_payment_method_id,
        method_type=str(method.type) if method else payer.default_method_type,
        amount=amount,
        currency=invoice.currency,
    )
    audit_event(payment, event="payment.created", amount=str(amount), currency=invoice.currency, number=number)
    return payment


def payment_retry_open(*, invoice: Invoice) -> Payment | None:
    """Dunning's retry, under the caller's lock of `invoice` (invoicing.services.invoice_lock):
    payment n+1 on the default method (after failed ones, or a partial payment), for the caller to have
    the collection message drive (`collection_enqueue`, in the same transaction). None when the
    invoice is not awaiting payment, a payment is in flight, or there is no method to charge."""
    payer = PaymentCustomer.objects.filter(organization_id=invoice.organization_id).first()
    if payer is None or not payer.default_payment_method_id or not payer.gateway_customer_id:
        return None
    if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE) or invoice.amount_due <= 0:
        return None
    last = Payment.objects.filter(invoice=invoice).order_by("-number").first()
    if last is not None and last.status in IN_FLIGHT:
        return None
    return _payment_new(
        invoice=invoice, payer=payer, number=(last.number + 1 if last else 1), amount=invoice.amount_due
    )


def collection_enqueue(*, invoice_id: int, number: int) -> None:
    """In the transaction that opened payment `number`: the collection message that drives it
    (the same handler, retries and crash recovery as the first charge)."""
    outbox_add(kind=COLLECT_KIND, key=f"collect:{invoice_id}:{number}", payload={"invoice_id": invoice_id})


def _attempt_start(payment: Payment, step: str) -> PaymentAttempt:
    # Committed before the call: a process that dies in the call leaves it `started`.
    return PaymentAttempt.objects.create(payment=payment, step=step, started_at=timezone.now())


def _attempt_finish(attempt: PaymentAttempt, *, outcome: str, status: str = "", failure: str = "", message: str = ""):
    attempt.outcome, attempt.status_after, attempt.failure_code = outcome, status, failure
    attempt.message, attempt.finished_at = message[:500], timezone.now()
    attempt.save(update_fields=["outcome", "status_after", "failure_code", "message", "finished_at"])


def payment_drive(*, payment_id: int, payer: PaymentCustomer | None = None) -> Payment:
    """Take the payment one step further at the gateway (see the module docstring). Raises
    GatewayDown (recorded as an errored attempt) for the caller to retry later."""
    payment = Payment.objects.select_related("organization", "invoice").get(pk=payment_id)
    if payment.status != PaymentStatus.PENDING:
        return payment  # the gateway answered already: webhooks take it from here
    gateway = gateway_get(payment.gateway)
    if payer is None:
        payer = PaymentCustomer.objects.get(organization_id=payment.organization_id)
    created_now = False
    if payment.gateway_payment_id is None:
        attempt = _attempt_start(payment, PaymentAttempt.Step.CREATE)
        try:
            result = gateway.charge_create(
                ChargeRequest(
                    amount=payment.money,
                    customer_id=payer.gateway_customer_id,
                    payment_method_id=payment.payment_method_id,
                    method_type=payment.method_type,
                    idempotency_key=payment.idempotency_key,
                    description=f"Invoice {payment.invoice.number}",
                    metadata={"invoice": payment.invoice.number or "", "payment": str(payment.pk)},
                )
            )
        except GatewayDown as error:
            _attempt_finish(attempt, outcome=PaymentAttempt.Outcome.ERRORED, failure=error.code, message=str(error))
            raise
        except GatewayError as error:
            _attempt_finish(attempt, outcome=PaymentAttempt.Outcome.ERRORED, failure=error.code, message=str(error))
            _payment_fail(payment, code="processing_error", message=str(error))
            return payment
        fault_point("payments.after_create")
        recorded = Payment.objects.filter(pk=payment.pk, gateway_payment_id=None).update(gateway_payment_id=result.id)
        _attempt_finish(attempt, outcome=PaymentAttempt.Outcome.DONE, status=result.status)
        if recorded:
            payment.gateway_payment_id, created_now = result.id, True
        else:
            payment.refresh_from_db()  # another run recorded it first: go by what it recorded
    # No confirm can have been sent for an intent created just now (a confirm needs its id).
    confirmed_before = not created_now and payment.attempts.filter(step=PaymentAttempt.Step.CONFIRM).exists()
    if confirmed_before:
        # A confirm may have reached the gateway: ask before asking again.
        attempt = _attempt_start(payment, PaymentAttempt.Step.RECOVER)
        try:
            state = gateway.charge_get(charge_id=payment.gateway_payment_id)
        except GatewayDown as error:
            _attempt_finish(attempt, outcome=PaymentAttempt.Outcome.ERRORED, failure=error.code, message=str(error))
            raise
        _attempt_finish(attempt, outcome=PaymentAttempt.Outcome.DONE, status=state.status)
        if state.status != ChargeStatus.CREATED:
            payment_result_record(payment_id=payment.pk, result=state)
            payment.refresh_from_db()
            return payment
    attempt = _attempt_start(payment, PaymentAttempt.Step.CONFIRM)
    try:
        result = gateway.charge_confirm(charge_id=payment.gateway_payment_id, idempotency_key=payment.idempotency_key)
    except GatewayDown as error:
        _attempt_finish(attempt, outcome=PaymentAttempt.Outcome.ERRORED, failure=error.code, message=str(error))
        raise
    except GatewayError as error:
        _attempt_finish(attempt, outcome=PaymentAttempt.Outcome.ERRORED, failure=error.code, message=str(error))
        _payment_fail(payment, code="processing_error", message=str(error))
        return payment
    fault_point("payments.after_confirm")
    _attempt_finish(
        attempt,
        outcome=PaymentAttempt.Outcome.DECLINED
        if result.status == ChargeStatus.FAILED
        else PaymentAttempt.Outcome.DONE,
        status=result.status,
        failure=result.failure.code if result.failure else "",
        message=result.failure.message if result.failure else "",
    )
    payment_result_record(payment_id=payment.pk, result=result)
    payment.refresh_from_db()
    return payment


def _payment_fail(payment: Payment, *, code: str, message: str) -> None:
    """The gateway refused the request itself (not a decline): the payment failed for good."""
    from payments.gateways.base import ChargeResult, Failure, FailureCode

    payment_result_record(
        payment_id=payment.pk,
        result=ChargeResult(
            id=payment.gateway_payment_id or "",
            status=ChargeStatus.FAILED,
            amount=payment.money,
            failure=Failure(FailureCode(code), message, "gateway_error"),
        ),
    )
    payment.refresh_from_db()


def invoice_collect(*, invoice_id: int) -> Payment | None:
    """Charge the organization's default method for the invoice (the outbox handler's body)."""
    payer = PaymentCustomer.objects.filter(organization__invoices=invoice_id).first()
    if payer is None or not payer.default_payment_method_id or not payer.gateway_customer_id:
        logger.info("payments: no default payment method; the invoice waits", extra={"invoice": invoice_id})
        return None
    payment = _payment_open(invoice_id, payer=payer)
    if payment is None:
        return None
    return payment_drive(payment_id=payment.pk, payer=payer)


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
    elif payer is None or not payer.default_payment_method_id or not payer.gateway_customer_id:
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
    try:
        invoice_collect(invoice_id=message.payload["invoice_id"])
    except GatewayDown:
        raise  # retried on the kind's schedule, with the same payment and key
    except GatewayError as error:
        if error.code == "gateway_not_configured":
            raise OutboxGiveUp(str(error)) from error
        raise


def collection_register() -> None:
    outbox_register(COLLECT_KIND, handler=_handle, retry_delays=RETRY_DELAYS, lease=LEASE)
