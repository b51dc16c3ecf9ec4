"""The dunning run: one service, called hourly in every tenant by beat (dunning.tasks) and by
`manage.py dunning_run --tenant <slug> [--at <instant>]`.

For each open invoice whose collection failed (or that is past its due date with nothing to
charge) it keeps a case whose days count from the first failure, and takes, at most once each,
the steps the policy (dunning.policy) puts on the days that have come: a retry, an email, a stage
(plan changes blocked, usage suspended, the final action). Every step is a `DunningStep` row
(unique per invoice and step) written in the transaction of its effect: the retry's payment and
its collection message, the email's outbox message, the stage and its final action. A rerun, or
a second run at the same time, finds the row and does nothing; a run killed anywhere leaves
either the step with its effect or neither.

Only the latest step of each kind that is due is taken (a run that missed days does not send
three reminders at once), and the day's email waits while a payment of the invoice is in flight
or was just opened by this run: the next hourly run sends it if that payment failed.

The organization's state is then derived from its open cases (the worst stage) and moved, under
the row lock of its `DunningAccount`, with an audit entry, webhooks and the entitlement's cache
entry deleted on commit. Once every overdue invoice is settled (paid, credited to zero, voided, or
written off by staff) it is active again, with a recovery email."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.audit import audit_actor, audit_event, audit_events_bulk
from billing.models import Organization, OrganizationStatus, Subscription, SubscriptionStatus
from billing.services.subscription import subscription_cancel
from billing.webhooks import subscription_emit
from core.errors import DomainError
from core.services.webhook_emit import webhook_emit
from dunning.models import (
    CaseResolution,
    CaseStage,
    DunningAccount,
    DunningCase,
    DunningPolicy,
    DunningStatus,
    DunningStep,
    FinalAction,
)
from dunning.policy import PLAN_CHANGES, USAGE, Policy
from dunning.selectors import entitlement_key, policies_for_invoices, policy_for_invoice
from dunning.services.card_expiry import card_expiry_warnings_take
from dunning.services.emails import dunning_email_enqueue
from invoicing.locks import invoice_lock
from invoicing.models import Invoice, InvoiceStatus
from invoicing.services.invoice import invoice_mark_uncollectible
from payments.models import CollectionMethod, Payment, PaymentCustomer, PaymentStatus
from payments.services.collection import payment_retry_open, payments_retry_open_bulk

logger = logging.getLogger(__name__)

DAY = timedelta(days=1)
IN_FLIGHT = (PaymentStatus.PENDING, PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION)
STAGE_RANK = {CaseStage.PAST_DUE: 0, CaseStage.RESTRICTED: 1, CaseStage.SUSPENDED: 2, CaseStage.FINAL: 3}
STATUS_OF_STAGE = {
    CaseStage.PAST_DUE: DunningStatus.PAST_DUE,
    CaseStage.RESTRICTED: DunningStatus.PAST_DUE,
    CaseStage.SUSPENDED: DunningStatus.SUSPENDED,
    CaseStage.FINAL: DunningStatus.FINAL,
}
BLOCKED_OF_STAGE = {
    CaseStage.PAST_DUE: [],
    CaseStage.RESTRICTED: [PLAN_CHANGES],
    CaseStage.SUSPENDED: [PLAN_CHANGES, USAGE],
    CaseStage.FINAL: [PLAN_CHANGES, USAGE],
}
EVENT_OF = {
    DunningStatus.PAST_DUE: "dunning.past_due",
    DunningStatus.SUSPENDED: "dunning.suspended",
    DunningStatus.FINAL: "dunning.final_action",
    DunningStatus.ACTIVE: "dunning.recovered",
}
ORGANIZATION_STATUS_OF = {
    DunningStatus.ACTIVE: OrganizationStatus.ACTIVE,
    DunningStatus.PAST_DUE: OrganizationStatus.PAST_DUE,
    DunningStatus.SUSPENDED: OrganizationStatus.SUSPENDED,
    DunningStatus.FINAL: OrganizationStatus.SUSPENDED,
}


@dataclass
class RunResult:
    cases_opened: int = 0
    cases_closed: int = 0
    retries: int = 0
    emails: int = 0
    stages: int = 0
    transitions: list[tuple[str, str, str]] = field(default_factory=list)  # (customer, before, after)


def dunning_run(*, at: datetime | None = None) -> RunResult:
    """The sweep. What it needs of every open case (policy, last failed payment, payer, steps
    taken, payments in flight, account) is read once up front, the day's retries are taken in
    chunks (one transaction, a few statements per invoice), and only the cases with a stage or an
    email due, and the organizations whose state changes, go the one-by-one way of
    `organization_run`: a sweep over 10,000 past-due invoices on a retry day is a few statements
    per invoice (bench/dunning.py)."""
    at = at or timezone.now()
    result = RunResult()
    result.cases_opened = _cases_open(at)
    result.emails += _pre_due_reminders(at)
    result.emails += card_expiry_warnings_take(at)
    accounts = {a.organization_id: a for a in DunningAccount.objects.all()}
    paused = {pk for pk, a in accounts.items() if a.paused}
    cases = [
        case
        for case in DunningCase.objects.filter(closed_at=None)
        .select_related("invoice")
        .order_by("organization_id", "started_at", "id")
        if case.organization_id not in paused
    ]
    missing = {case.organization_id for case in cases} - accounts.keys()
    DunningAccount.objects.bulk_create([DunningAccount(organization_id=pk) for pk in missing], ignore_conflicts=True)
    snapshot = _snapshot(cases)
    retries: list[tuple[DunningCase, str]] = []
    later: list[tuple[DunningCase, Policy, int]] = []
    for case in cases:
        resolution = _resolution(case.invoice)
        if resolution:
            with audit_actor(None), transaction.atomic():
                if case_close(case, resolution=resolution, at=at):
                    result.cases_closed += 1
            continue
        policy = snapshot.policies[case.invoice_id]
        day = int((at - case.started_at) / DAY)
        if day < 0:
            continue
        step = _retry_step(
            case,
            policy=policy,
            day=day,
            last=snapshot.last_failed.get(case.invoice_id),
            payer=snapshot.payers.get(case.organization_id),
        )
        if step and (case.invoice_id, step) not in snapshot.steps:
            retries.append((case, step))  # its stage and email wait for its outcome (the next run)
        elif case.invoice_id not in snapshot.in_flight:
            later.append((case, policy, day))
    _retries_take(retries, at=at, result=result)
    for case, policy, day in later:
        _stages(case, policy=policy, day=day, at=at, result=result)
        _email(case, policy=policy, day=day, at=at, result=result, steps=snapshot.steps)
    # The organizations whose state differs from that of their open cases (the check under the
    # account's lock is _organization_settle's own).
    worst: dict[int, str] = {}
    for organization_id, stage in DunningCase.objects.filter(closed_at=None).values_list("organization_id", "stage"):
        if organization_id not in worst or STAGE_RANK[stage] > STAGE_RANK[worst[organization_id]]:
            worst[organization_id] = stage
    organizations = (set(worst) | {pk for pk, a in accounts.items() if a.status != DunningStatus.ACTIVE}) - paused
    for organization_id in sorted(organizations):
        account, stage = accounts.get(organization_id), worst.get(organization_id)
        status = STATUS_OF_STAGE[stage] if stage else DunningStatus.ACTIVE
        blocked = BLOCKED_OF_STAGE[stage] if stage else []
        if account is None or (account.status, account.blocked_features) != (status, blocked):
            _organization_settle(organization_id=organization_id, at=at, result=result)
    return result


@dataclass
class _Snapshot:
    """What a sweep reads once for all its open cases."""

    policies: dict[int, Policy]  # by invoice
    last_failed: dict[int, Payment]  # by invoice
    payers: dict[int, PaymentCustomer]  # by organization
    steps: set[tuple[int, str]]  # (invoice, step) taken
    in_flight: set[int]  # invoices with a payment in flight


def _snapshot(cases: list[DunningCase]) -> _Snapshot:
    invoices = [case.invoice for case in cases]
    ids = [invoice.pk for invoice in invoices]
    last_failed = {
        p.invoice_id: p
        for p in Payment.objects.filter(invoice_id__in=ids, status=PaymentStatus.FAILED)
        .order_by("invoice_id", "-number")
        .distinct("invoice_id")
    }
    organizations = {case.organization_id for case in cases}
    return _Snapshot(
        policies=policies_for_invoices(invoices),
        last_failed=last_failed,
        payers={p.organization_id: p for p in PaymentCustomer.objects.filter(organization_id__in=organizations)},
        steps=set(DunningStep.objects.filter(invoice_id__in=ids).values_list("invoice_id", "step")),
        in_flight=set(
            Payment.objects.filter(invoice_id__in=ids, status__in=IN_FLIGHT).values_list("invoice_id", flat=True)
        ),
    )


def _cases_open(at: datetime) -> int:
    """A case for each open invoice with an amount due that has none yet and either a failed
    payment (its days count from the first failure) or, collected by hand (or with no method to
    charge) and never charged, a due date that has passed."""
    awaiting = Invoice.objects.filter(status=InvoiceStatus.OPEN, amount_due__gt=0).exclude(
        Exists(DunningCase.objects.filter(invoice=OuterRef("pk")))
    )
    cases = []
    failed = awaiting.filter(Exists(Payment.objects.filter(invoice=OuterRef("pk"), status=PaymentStatus.FAILED)))
    for invoice in failed:
        first = Payment.objects.filter(invoice=invoice, status=PaymentStatus.FAILED).order_by("updated_at").first()
        cases.append(DunningCase(invoice=invoice, organization_id=invoice.organization_id, started_at=first.updated_at))
    automatic_with_method = PaymentCustomer.objects.filter(
        organization=OuterRef("organization_id"), collection_method=CollectionMethod.AUTOMATIC
    ).exclude(default_payment_method_id="")
    overdue = awaiting.filter(due_at__lte=at).exclude(Exists(Payment.objects.filter(invoice=OuterRef("pk"))))
    for invoice in overdue.exclude(Exists(automatic_with_method)):
        cases.append(DunningCase(invoice=invoice, organization_id=invoice.organization_id, started_at=invoice.due_at))
    created = DunningCase.objects.bulk_create(cases, ignore_conflicts=True)
    return len(created)


def _manual(invoices):
    """The invoices nobody charges by themselves: their organization is not collected
    automatically with a default method."""
    automatic_with_method = PaymentCustomer.objects.filter(
        organization=OuterRef("organization_id"), collection_method=CollectionMethod.AUTOMATIC
    ).exclude(default_payment_method_id="")
    return invoices.exclude(Exists(automatic_with_method))


def _pre_due_reminders(at: datetime) -> int:
    """The optional reminder before the due date, for invoices paid by hand (a policy's
    `pre_due_reminder_days`): one `email:predue` step per invoice (the step's constraint), with
    its outbox message, from that many days before the due date until it."""
    days = [d for d in DunningPolicy.objects.values_list("pre_due_reminder_days", flat=True) if d is not None]
    if not days:
        return 0
    candidates = list(
        _manual(Invoice.objects.filter(status=InvoiceStatus.OPEN, amount_due__gt=0, due_at__gt=at))
        .filter(due_at__lte=at + max(days) * DAY)
        .exclude(Exists(DunningStep.objects.filter(invoice=OuterRef("pk"), step="email:predue")))
    )
    policies = policies_for_invoices(candidates)
    sent = 0
    for invoice in candidates:
        ahead = policies[invoice.pk].pre_due_reminder_days
        if ahead is None or invoice.due_at - at > ahead * DAY:
            continue
        with transaction.atomic():
            row = _step(invoice, "email:predue", at=at, email_kind="predue")
            if row is not None:
                dunning_email_enqueue(row)
                sent += 1
    return sent


def organization_run(*, organization_id: int, at: datetime, result: RunResult | None = None) -> None:
    result = result or RunResult()
    account, _ = DunningAccount.objects.get_or_create(organization_id=organization_id)
    if account.paused:
        return
    for case in DunningCase.objects.filter(organization_id=organization_id, closed_at=None).select_related("invoice"):
        _case_run(case, at=at, result=result)
    _organization_settle(organization_id=organization_id, at=at, result=result)


def method_changed(organization_id: int) -> None:
    """A new default payment method (payments.hooks): charge it now for the organization's
    overdue invoices (the policy's `retry_on_method_change`), rather than at the next hourly run."""
    if DunningCase.objects.filter(organization_id=organization_id, closed_at=None).exists():
        organization_run(organization_id=organization_id, at=timezone.now())


def _resolution(invoice: Invoice) -> str:
    if invoice.status == InvoiceStatus.VOID:
        return CaseResolution.VOIDED
    if invoice.status == InvoiceStatus.PAID or (invoice.status == InvoiceStatus.OPEN and invoice.amount_due <= 0):
        # paid if any money came in for it; a credit note covering the rest counts as paid too
        return CaseResolution.PAID if invoice.amount_paid > 0 else CaseResolution.CREDITED
    return ""


def case_close(case: DunningCase, *, resolution: str, at: datetime) -> bool:
    closed = DunningCase.objects.filter(pk=case.pk, closed_at=None).update(closed_at=at, resolution=resolution)
    if closed:
        case.closed_at, case.resolution = at, resolution
        audit_event(case.invoice, event="dunning.case_closed", resolution=resolution, stage=case.stage)
    return bool(closed)


def _step(case: DunningCase | Invoice, step: str, *, at: datetime, **fields) -> DunningStep | None:
    """Write the step's row in the caller's transaction; None (and the caller rolls back its
    effect) when the step was taken before. `case` is the invoice itself for a step before any
    case (the pre-due reminder)."""
    invoice_id = case.pk if isinstance(case, Invoice) else case.invoice_id
    try:
        with transaction.atomic():
            return DunningStep.objects.create(
                invoice_id=invoice_id, organization_id=case.organization_id, step=step, at=at, **fields
            )
    except IntegrityError:
        return None


class _Taken(Exception):
    """The step was taken by an earlier (or concurrent) run: roll its effect back."""


def _case_run(case: DunningCase, *, at: datetime, result: RunResult) -> None:
    invoice = case.invoice
    resolution = _resolution(invoice)
    if resolution:
        with audit_actor(None), transaction.atomic():
            if case_close(case, resolution=resolution, at=at):
                result.cases_closed += 1
        return
    policy = policy_for_invoice(invoice)
    day = int((at - case.started_at) / DAY)
    if day < 0:
        return
    # The day's retry first; its stage and email wait for its outcome (the next run).
    if _retry(case, policy=policy, day=day, at=at, result=result) or _in_flight(case.invoice_id):
        return
    _stages(case, policy=policy, day=day, at=at, result=result)
    _email(case, policy=policy, day=day, at=at, result=result)


def _stages(case: DunningCase, *, policy: Policy, day: int, at: datetime, result: RunResult) -> None:
    target = policy.stage(day)
    for stage in (CaseStage.RESTRICTED, CaseStage.SUSPENDED, CaseStage.FINAL):
        if STAGE_RANK[stage] > STAGE_RANK[target] or STAGE_RANK[stage] <= STAGE_RANK[case.stage]:
            continue
        try:
            with audit_actor(None), transaction.atomic():
                if _step(case, f"stage:{stage}", at=at) is None:
                    raise _Taken
                DunningCase.objects.filter(pk=case.pk).update(stage=stage)
                case.stage = stage
                audit_event(case.invoice, event=f"dunning.{stage}", day=day)
                if stage == CaseStage.FINAL:
                    _final_action(case, policy=policy, at=at)
                result.stages += 1
        except _Taken:
            case.refresh_from_db(fields=["stage"])


def _final_action(case: DunningCase, *, policy: Policy, at: datetime) -> None:
    invoice = case.invoice
    if policy.final_action == FinalAction.UNCOLLECTIBLE:
        invoice_mark_uncollectible(actor=None, invoice=invoice, at=at)
    elif policy.final_action == FinalAction.CANCEL and invoice.subscription_id:
        subscription = Subscription.objects.get(pk=invoice.subscription_id)
        if subscription.ended_at is None and not subscription.cancel_at_period_end:
            try:
                subscription_cancel(actor=None, subscription=subscription, at_period_end=True, at=at)
            except DomainError as error:  # ended meanwhile: nothing left to cancel
                logger.info("dunning: final cancellation skipped", extra={"invoice": invoice.pk, "why": error.code})
    audit_event(invoice, event="dunning.final_action", action=policy.final_action)


def _in_flight(invoice_id: int) -> bool:
    return Payment.objects.filter(invoice_id=invoice_id, status__in=IN_FLIGHT).exists()


def _retry(case: DunningCase, *, policy: Policy, day: int, at: datetime, result: RunResult) -> bool:
    """At most one charge per run: a new default method at once, else the latest retry day
    that has come. Through payments' collection path (payment n+1 with its own idempotency key,
    driven by the collection message written in the same transaction)."""
    last = Payment.objects.filter(invoice_id=case.invoice_id, status=PaymentStatus.FAILED).order_by("-number").first()
    payer = PaymentCustomer.objects.filter(organization_id=case.organization_id).first()
    step = _retry_step(case, policy=policy, day=day, last=last, payer=payer)
    if not step or DunningStep.objects.filter(invoice_id=case.invoice_id, step=step).exists():
        return False
    if not _retry_take(case, step, at=at):
        return False
    result.retries += 1
    return True


def _retry_step(
    case: DunningCase, *, policy: Policy, day: int, last: Payment | None, payer: PaymentCustomer | None
) -> str:
    """The retry step due (taken or not), or ""."""
    if case.stage == CaseStage.FINAL:
        return ""
    if (
        policy.retry_on_method_change
        and last is not None
        and payer is not None
        and payer.default_payment_method_id
        and payer.default_payment_method_id != last.payment_method_id
    ):
        return f"retry:method:{payer.default_payment_method_id}"[:80]
    if last is not None and (policy.retry_hard_declines or last.failure_code != "hard_decline"):
        due = [n for n, retry_day in enumerate(policy.retry_days, start=1) if retry_day <= day]
        if due:
            return f"retry:{due[-1]}"
    return ""


def _retry_take(case: DunningCase, step: str, *, at: datetime) -> bool:
    try:
        with audit_actor(None), transaction.atomic():
            invoice = invoice_lock(case.invoice_id)
            payment = payment_retry_open(invoice=invoice)
            if payment is None or _step(case, step, at=at, payment=payment) is None:
                raise _Taken
            audit_event(invoice, event="dunning.retry", step=step, payment=payment.pk, number=payment.number)
    except _Taken:
        return False
    return True


RETRY_CHUNK = 200


def _retries_take(retries: list[tuple[DunningCase, str]], *, at: datetime, result: RunResult) -> None:
    """The sweep's retries, RETRY_CHUNK invoices a transaction: their rows locked in id order
    (as one by one: the invoice before anything else), the steps already taken re-read under the
    locks (every retry takes its invoice's lock before writing its step, so none can appear
    meanwhile), then payments' `payments_retry_open_bulk` for the rest (their payments, audit rows
    and collection messages one INSERT each), and the chunk's steps and audit entries one INSERT
    each: a handful of statements per chunk. A chunk that fails anyway (a constraint, a domain
    rule) is rolled back and taken one by one, isolating the failure."""
    for start in range(0, len(retries), RETRY_CHUNK):
        chunk = retries[start : start + RETRY_CHUNK]
        try:
            with audit_actor(None), transaction.atomic():
                result.retries += _retry_chunk(chunk, at=at)
        except (IntegrityError, DomainError):
            logger.warning("dunning: a retry chunk was taken one by one", exc_info=True)
            for case, step in chunk:
                try:
                    result.retries += _retry_take(case, step, at=at)
                except DomainError:
                    logger.exception("dunning: retry failed", extra={"invoice": case.invoice_id})


def _retry_chunk(chunk: list[tuple[DunningCase, str]], *, at: datetime) -> int:
    ids = sorted(case.invoice_id for case, _ in chunk)
    list(Invoice.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk").values_list("pk"))
    taken = set(
        DunningStep.objects.filter(invoice_id__in=ids, step__in={step for _, step in chunk}).values_list(
            "invoice_id", "step"
        )
    )
    wanted = {case.invoice_id: (case, step) for case, step in chunk if (case.invoice_id, step) not in taken}
    opened = payments_retry_open_bulk(sorted(wanted))
    steps = [
        DunningStep(
            invoice_id=invoice_id,
            organization_id=wanted[invoice_id][0].organization_id,
            step=wanted[invoice_id][1],
            at=at,
            payment=payment,
        )
        for invoice_id, payment in opened.items()
    ]
    DunningStep.objects.bulk_create(steps)
    audit_events_bulk(
        [payment.invoice for payment in opened.values()],
        event="dunning.retry",
        details=lambda i: {"step": wanted[i.pk][1], "payment": opened[i.pk].pk, "number": opened[i.pk].number},
    )
    return len(opened)


def _email(
    case: DunningCase, *, policy: Policy, day: int, at: datetime, result: RunResult, steps: set | None = None
) -> None:
    due = [n for n in policy.notice_days if n <= day]
    if not due:
        return
    notice_day = due[-1]
    step = f"email:d{notice_day}"
    if steps is not None and (case.invoice_id, step) in steps:
        return  # taken before the sweep began (its snapshot); one taken since fails on the constraint
    if steps is None and DunningStep.objects.filter(invoice_id=case.invoice_id, step=step).exists():
        return
    with transaction.atomic():
        row = _step(case, step, at=at, email_kind=policy.email_kind(notice_day))
        if row is not None:
            dunning_email_enqueue(row)
            result.emails += 1


def _organization_settle(*, organization_id: int, at: datetime, result: RunResult, actor=None) -> None:
    """Move the organization to the state of its open cases (active when none is left), at
    least suspended while staff suspended it by hand."""
    stages = list(
        DunningCase.objects.filter(organization_id=organization_id, closed_at=None).values_list("stage", flat=True)
    )
    worst = max(stages, key=STAGE_RANK.__getitem__) if stages else None
    with audit_actor(actor), transaction.atomic():
        account = DunningAccount.objects.select_for_update().get(organization_id=organization_id)
        manual = account.suspended_by_staff and STAGE_RANK.get(worst, -1) < STAGE_RANK[CaseStage.SUSPENDED]
        if manual:
            worst = CaseStage.SUSPENDED
        status = STATUS_OF_STAGE[worst] if worst else DunningStatus.ACTIVE
        blocked = BLOCKED_OF_STAGE[worst] if worst else []
        if account.status == status and account.blocked_features == blocked:
            return
        before = account.status
        organization = Organization.objects.get(pk=organization_id)
        account.status, account.blocked_features = status, blocked
        account.since = at if status != DunningStatus.ACTIVE else None
        account.reason = "suspended by staff" if manual else _reason(organization_id, worst) if worst else ""
        account.save(update_fields=["status", "blocked_features", "since", "reason", "updated_at"])
        if organization.status != OrganizationStatus.CLOSED:
            Organization.objects.filter(pk=organization_id).exclude(status=OrganizationStatus.CLOSED).update(
                status=ORGANIZATION_STATUS_OF[status], updated_at=at
            )
        audit_event(organization, event="dunning.transition", status=(before, status), blocked=blocked)
        event = EVENT_OF[status] if status != before else "dunning.restricted"
        webhook_emit(event_type=event, payload=_payload(organization, account, before=before))
        _subscriptions_move(organization, status=status, before=before)
        if status == DunningStatus.ACTIVE:
            _recovery_email(organization_id, at=at)
        # Deleted now and again on commit: a read between the two may cache the state before
        # this transaction, which the second delete removes.
        key = entitlement_key(organization_id)
        cache.delete(key)
        transaction.on_commit(lambda: cache.delete(key))
    result.transitions.append((organization.external_id, before, status))


def _reason(organization_id: int, stage: str) -> str:
    numbers = list(
        DunningCase.objects.filter(organization_id=organization_id, closed_at=None)
        .order_by("started_at")
        .values_list("invoice__number", flat=True)
    )
    what = {
        CaseStage.PAST_DUE: "payment failed",
        CaseStage.RESTRICTED: "payment failed; plan changes blocked",
        CaseStage.SUSPENDED: "payment failed; usage suspended",
        CaseStage.FINAL: "unpaid after the final notice",
    }[stage]
    return f"{what}: invoice {', '.join(numbers)}"[:200]


def _payload(organization: Organization, account: DunningAccount, *, before: str) -> dict:
    return {
        "customer": organization.external_id,
        "status": account.status,
        "previous_status": before,
        "serve": account.status in (DunningStatus.ACTIVE, DunningStatus.PAST_DUE),
        "blocked_features": account.blocked_features,
        "since": account.since.isoformat() if account.since else None,
        "reason": account.reason,
        "invoices": list(
            DunningCase.objects.filter(organization=organization, closed_at=None).values_list(
                "invoice__number", flat=True
            )
        ),
    }


def _subscriptions_move(organization: Organization, *, status: str, before: str) -> None:
    """Live subscriptions follow the organization (pending and trialing ones are not billed yet:
    untouched); suspending keeps every row, usage is still accepted and metered."""
    live = Subscription.objects.filter(organization=organization).select_related("plan_version__plan", "organization")
    if status == DunningStatus.PAST_DUE:
        live.filter(status=SubscriptionStatus.ACTIVE).update(status=SubscriptionStatus.PAST_DUE)
        # the suspending invoice was settled while another is still overdue: usage access returns
        for subscription in live.filter(status=SubscriptionStatus.SUSPENDED):
            subscription.status = SubscriptionStatus.PAST_DUE
            subscription.save(update_fields=["status"])
            audit_event(subscription, event="subscription.reactivated")
            subscription_emit("subscription.reactivated", subscription)
    elif status == DunningStatus.SUSPENDED:
        moving = list(live.filter(status__in=(SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)))
        for subscription in moving:
            subscription.status = SubscriptionStatus.SUSPENDED
            subscription.save(update_fields=["status"])
            audit_event(subscription, event="subscription.suspended")
            subscription_emit("subscription.suspended", subscription)
    elif status == DunningStatus.ACTIVE:
        for subscription in live.filter(status__in=(SubscriptionStatus.PAST_DUE, SubscriptionStatus.SUSPENDED)):
            was = subscription.status
            subscription.status = SubscriptionStatus.ACTIVE
            subscription.save(update_fields=["status"])
            if was == SubscriptionStatus.SUSPENDED:
                audit_event(subscription, event="subscription.reactivated")
                subscription_emit("subscription.reactivated", subscription)


def _recovery_email(organization_id: int, *, at: datetime) -> None:
    last = (
        DunningCase.objects.filter(organization_id=organization_id, resolution__in=[CaseResolution.PAID])
        .order_by("-closed_at", "-id")
        .first()
    )
    if last is None:
        return  # settled by credit, voided or written off: nothing paid to thank for
    row = _step(last, "email:recovered", at=at, email_kind="recovered")
    if row is not None:
        dunning_email_enqueue(row)
