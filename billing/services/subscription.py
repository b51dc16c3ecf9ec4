"""Subscriptions: creation, plan changes, cancellation and resumption, and moving a subscription
past a bill point once it has been billed.

Every change is computed first as a new snapshot (billing.schedule.SubscriptionState) and its bill
at the change's bill point (billing.bill); a preview stops there and writes nothing, a real change
writes exactly that snapshot. So a preview's lines are the lines the billing run then bills.

Rules (see README "Subscriptions"):
- Upgrade (the new plan's base fee per month is at least the old one's) takes effect at once;
  downgrade at the end of the current period unless `timing="now"` is asked for. At once, the
  usage so far is billed under the old version, the unused in-advance fee is credited and the new
  fee charged for the rest of the period, prorated to the second, each line rounded on its own.
- Cancel at period end (the default) or at once, crediting the unused in-advance fee.
- Resume takes back a cancellation scheduled for the period end.
- Changes are made "now" (an explicit `at` is for tests and time travel) and never before the
  last bill point that was billed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from celery import current_app
from dateutil.relativedelta import relativedelta
from django.db import connection, transaction
from django.utils import timezone

from accounts.audit import Actor, audit_actor, audit_event
from billing.bill import Bill
from billing.hooks import plan_change_gates_run
from billing.locks import organization_lock, subscription_lock
from billing.models import (
    LIVE_STATUSES,
    BillingMode,
    Organization,
    OrganizationStatus,
    PlanVersion,
    Subscription,
    SubscriptionPhase,
    SubscriptionStatus,
)
from billing.periods import INTERVAL_MONTHS, anniversary_period_containing, calendar_period_containing
from billing.schedule import PhaseState, SubscriptionState, next_bill_point
from billing.selectors.bill import bill_get
from billing.selectors.subscription_state import subscription_state_get, version_states
from billing.webhooks import subscription_emit
from core.errors import DomainError

logger = logging.getLogger(__name__)


# How far from now a subscription may start. Backdating covers a migration from another system or
# a contract signed late; a year back keeps every period it bills within the raw events'
# retention (EVENT_RAW_RETENTION_DAYS, 400 by default), so its usage can still be priced. A start
# more than a year ahead is more likely a typo than a plan (it can be created nearer the date).
START_WITHIN = timedelta(days=365)


class ChangeTiming:
    NOW = "now"
    PERIOD_END = "period_end"


@dataclass(frozen=True)
class SubscriptionChange:
    """A plan change or cancellation: when it takes effect and the bill due at that instant."""

    subscription: Subscription
    effective_at: datetime
    bill: Bill
    kind: str  # "upgrade" | "downgrade" | "cancel"
    preview: bool


def _instant(at: datetime | None) -> datetime:
    """Bill points fall on whole seconds (proration is to the second)."""
    at = at or timezone.now()
    if at.tzinfo is None:
        raise DomainError("Instants need a UTC offset.", code="invalid_datetime")
    return at.replace(microsecond=0)


def _current_period(state: SubscriptionState, instant: datetime) -> tuple[datetime, datetime]:
    """The period shown as current at `instant`: the whole period, clipped to the start."""
    instant = max(instant, state.started_at)
    start, end = state.period(instant)
    return max(start, state.started_at), end


def _status_at(state: SubscriptionState, instant: datetime, current: str) -> str:
    if state.ended_at is not None and instant >= state.ended_at:
        ended = (SubscriptionStatus.CANCELED, SubscriptionStatus.ENDED)
        return current if current in ended else SubscriptionStatus.CANCELED
    if instant < state.started_at:
        return SubscriptionStatus.PENDING
    if state.trial_end is not None and instant < state.trial_end:
        return SubscriptionStatus.TRIALING
    if current in (SubscriptionStatus.PAST_DUE, SubscriptionStatus.SUSPENDED):
        return current  # dunning owns these
    return SubscriptionStatus.ACTIVE


def subscription_create(
    *,
    actor: Actor,
    organization: Organization,
    plan_version: PlanVersion,
    start_at: datetime | None = None,
    billing_mode: str = BillingMode.CALENDAR,
) -> Subscription:
    """Subscribe now or from a date at most a year (START_WITHIN) before or after now (else
    `start_at_out_of_range`). Calendar billing anchors on the 1st of the period the start
    falls in (the first period runs from the start to the next 1st and is prorated); anniversary
    billing anchors on the start itself. A plan with trial days starts in `trialing` until the
    same local time `trial_days` later; a start in the future is `pending` until it comes."""
    plan = plan_version.plan
    now = _instant(None)
    start_at = _instant(start_at) if start_at is not None else now
    if organization.status == OrganizationStatus.CLOSED:
        raise DomainError("A closed organization cannot subscribe.", code="organization_closed")
    if not plan.is_active:
        raise DomainError(f"Plan {plan.code!r} is not open to new subscriptions.", code="plan_inactive")
    if plan.currency != organization.currency:
        raise DomainError(
            f"The plan bills in {plan.currency}; the organization is billed in {organization.currency}.",
            code="currency_mismatch",
        )
    if billing_mode not in BillingMode.values:
        raise DomainError(f"billing_mode must be one of {BillingMode.values}.", code="invalid_billing_mode")
    if not now - START_WITHIN <= start_at <= now + START_WITHIN:
        raise DomainError(
            f"start_at must be within {START_WITHIN.days} days of now: from {(now - START_WITHIN).isoformat()} "
            f"to {(now + START_WITHIN).isoformat()}.",
            code="start_at_out_of_range",
        )
    tz = organization.timezone
    if billing_mode == BillingMode.ANNIVERSARY:
        anchor = start_at
        _, end = anniversary_period_containing(anchor=anchor, timezone=tz, interval=plan.interval, instant=start_at)
    else:
        anchor, end = calendar_period_containing(instant=start_at, timezone=tz, interval=plan.interval)
    trial_end = None
    if plan_version.trial_days:
        local_start = start_at.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
        trial_end = (local_start + relativedelta(days=plan_version.trial_days)).replace(tzinfo=ZoneInfo(tz))
    if start_at > now:
        status = SubscriptionStatus.PENDING
    else:
        status = SubscriptionStatus.TRIALING if trial_end and trial_end > now else SubscriptionStatus.ACTIVE
    with audit_actor(actor), transaction.atomic():
        organization_lock(organization.pk)
        subscription = Subscription.objects.create(
            organization=organization,
            plan_version=plan_version,
            status=status,
            billing_mode=billing_mode,
            billing_anchor=anchor,
            started_at=start_at,
            current_period_start=start_at,
            current_period_end=end,
            trial_end=trial_end,
            next_bill_at=start_at,
        )
        SubscriptionPhase.objects.create(subscription=subscription, plan_version=plan_version, starts_at=start_at)
        subscription_emit("subscription.created", subscription)
        if start_at <= now:
            _bill_soon()  # its first bill point (the in-advance fee) is due already
    return subscription


def _monthly_fee(version: PlanVersion):
    return version.base_fee / INTERVAL_MONTHS[version.plan.interval]


def _bill_soon() -> None:
    """A bill point that is due at once (a subscription starting now or in the past, an upgrade,
    a cancellation now) is billed by the next billing run; ask for one on commit instead of
    waiting for the hourly beat. By task name: invoicing sits above billing. Best effort: if the
    broker is down the hourly run bills it."""
    schema = connection.schema_name

    def send() -> None:
        try:
            current_app.send_task("invoicing.billing_run", headers={"_schema_name": schema})
        except Exception:
            logger.warning("could not enqueue a billing run", exc_info=True)

    transaction.on_commit(send)


def _live_checked(subscription: Subscription, at: datetime) -> None:
    if subscription.status not in LIVE_STATUSES or (subscription.ended_at and subscription.ended_at <= at):
        raise DomainError(f"Subscription {subscription.pk} has ended.", code="subscription_ended")
    if subscription.billed_through is not None and at <= subscription.billed_through:
        # At the billed instant itself the bill is made: a change then would never be billed.
        raise DomainError(
            "A change must take effect after the last billed instant "
            f"({subscription.billed_through.isoformat()}); try again in a second.",
            code="change_in_billed_past",
        )


def _phases_after_change(state: SubscriptionState, version_state, effective_at: datetime) -> tuple[PhaseState, ...]:
    """The phases once `version_state` takes effect at `effective_at`: later scheduled phases are
    dropped (a new change replaces a scheduled one), the phase in effect is cut there."""
    kept: list[PhaseState] = []
    for phase in state.phases:
        if phase.starts_at >= effective_at:
            continue
        if phase.ends_at is None or phase.ends_at > effective_at:
            phase = PhaseState(phase.version, phase.starts_at, effective_at)
        kept.append(phase)
    kept.append(PhaseState(version_state, effective_at, state.ended_at))
    return tuple(kept)


def _ended(state: SubscriptionState, ended_at: datetime) -> SubscriptionState:
    """The snapshot ending at `ended_at`: phases from then on dropped, the one in effect cut
    there (a subscription ended at its very start keeps its first phase, open)."""
    phases = []
    for phase in state.phases:
        if phase.starts_at >= ended_at and phases:
            continue
        if phase.starts_at < ended_at and (phase.ends_at is None or phase.ends_at > ended_at):
            phase = PhaseState(phase.version, phase.starts_at, ended_at)
        phases.append(phase)
    return state.with_changes(phases=tuple(phases), ended_at=ended_at)


def _phases_write(subscription: Subscription, phases: tuple[PhaseState, ...]) -> None:
    """Make the stored phases equal `phases` (same starts, versions and ends)."""
    stored = {p.starts_at: p for p in subscription.phases.all()}
    wanted = {p.starts_at: p for p in phases}
    for starts_at, row in stored.items():
        if starts_at not in wanted:
            row.delete()  # a scheduled phase that never took effect, replaced or canceled
    for starts_at, phase in wanted.items():
        row = stored.get(starts_at)
        if row is None:
            SubscriptionPhase.objects.create(
                subscription=subscription, plan_version_id=phase.version.id, starts_at=starts_at, ends_at=phase.ends_at
            )
        elif row.plan_version_id != phase.version.id or row.ends_at != phase.ends_at:
            row.plan_version_id, row.ends_at = phase.version.id, phase.ends_at
            row.save(update_fields=["plan_version", "ends_at"])


def _state_write(subscription: Subscription, state: SubscriptionState, *, at: datetime, **fields) -> None:
    """Store the snapshot's consequences on the subscription row as of `at`."""
    _phases_write(subscription, state.phases)
    start, end = _current_period(state, at)
    subscription.plan_version_id = state.phase_at(max(at, state.started_at)).version.id
    subscription.current_period_start, subscription.current_period_end = start, end
    subscription.ended_at = state.ended_at
    subscription.next_bill_at = next_bill_point(state, subscription.billed_through)
    for key, value in fields.items():
        setattr(subscription, key, value)
    subscription.save()


def subscription_change_plan(
    *,
    actor: Actor,
    subscription: Subscription,
    plan_version: PlanVersion,
    timing: str | None = None,
    at: datetime | None = None,
    preview: bool = False,
) -> SubscriptionChange:
    """Move the subscription to `plan_version` (see the module docstring). `timing` None picks by
    direction: upgrades now, downgrades at period end. A subscription that has not started yet
    simply starts on the new version. With `preview`, nothing is written."""
    at = _instant(at)
    with audit_actor(actor), transaction.atomic():
        locked = subscription_lock(subscription.pk) if not preview else subscription
        current = locked.plan_version
        plan_version = PlanVersion.objects.select_related("plan").get(pk=plan_version.pk)  # as stored now
        _live_checked(locked, at)
        # before anything else about the change: an organization dunning restricts may not change
        # plan at all, and the refusal should say that rather than something about the target
        plan_change_gates_run(organization_id=locked.organization_id, at=at)
        if plan_version.pk == current.pk:
            raise DomainError("The subscription is already on this plan version.", code="same_plan_version")
        if plan_version.plan.currency != current.plan.currency:
            raise DomainError(
                f"The subscription bills in {current.plan.currency}; plan {plan_version.plan.code!r} bills in "
                f"{plan_version.plan.currency}.",
                code="currency_mismatch",
            )
        if not plan_version.plan.is_active:
            raise DomainError(
                f"Plan {plan_version.plan.code!r} is not open to new subscriptions.", code="plan_inactive"
            )
        if locked.cancel_at_period_end:
            raise DomainError(
                "The subscription is canceled at period end; resume it before changing its plan.",
                code="cancellation_scheduled",
            )
        if timing not in (None, ChangeTiming.NOW, ChangeTiming.PERIOD_END):
            raise DomainError("timing must be 'now' or 'period_end'.", code="invalid_timing")
        kind = "upgrade" if _monthly_fee(plan_version) >= _monthly_fee(current) else "downgrade"
        timing = timing or (ChangeTiming.NOW if kind == "upgrade" else ChangeTiming.PERIOD_END)
        state = subscription_state_get(locked)
        new_version = version_states([plan_version.pk])[plan_version.pk]
        if at < state.started_at:
            effective_at = state.started_at  # not started yet: it starts on the new version
        elif timing == ChangeTiming.NOW:
            effective_at = at
        else:
            effective_at = state.period(at)[1]
        new_state = state.with_changes(phases=_phases_after_change(state, new_version, effective_at))
        bill = bill_get(new_state, effective_at)
        if not preview:
            _state_write(locked, new_state, at=at)
            if effective_at <= at:
                _bill_soon()
            audit_event(
                locked,
                event=f"subscription.{kind}",
                plan_version=(current.pk, plan_version.pk),
                timing=timing,
                effective_at=effective_at.isoformat(),
            )
            change = {"kind": kind, "timing": timing, "effective_at": effective_at.isoformat()}
            change["previous"] = {"plan": current.plan.code, "plan_version": current.version}
            change["new"] = {"plan": plan_version.plan.code, "plan_version": plan_version.version}
            subscription_emit("subscription.updated", locked, change=change)
    return SubscriptionChange(locked, effective_at, bill, kind, preview)


def subscription_cancel(
    *,
    actor: Actor,
    subscription: Subscription,
    at_period_end: bool = True,
    at: datetime | None = None,
    preview: bool = False,
) -> SubscriptionChange:
    """Cancel at the end of the current period (the default) or at once (status `canceled` now,
    the unused in-advance fee credited on the final bill)."""
    at = _instant(at)
    with audit_actor(actor), transaction.atomic():
        locked = subscription_lock(subscription.pk) if not preview else subscription
        _live_checked(locked, at)
        if locked.cancel_at_period_end and at_period_end:
            raise DomainError("The subscription is already canceled at period end.", code="cancellation_scheduled")
        state = subscription_state_get(locked)
        if at < state.started_at:
            effective_at = state.started_at  # canceled before it started: it never bills
        else:
            effective_at = state.period(at)[1] if at_period_end else at
        new_state = _ended(state, effective_at)
        bill = bill_get(new_state, effective_at)
        if not preview:
            ends_now = effective_at <= at or at < state.started_at  # a pending one never starts
            _state_write(
                locked,
                new_state,
                at=at,
                canceled_at=at,
                cancel_at_period_end=not ends_now,
                status=SubscriptionStatus.CANCELED if ends_now else locked.status,
            )
            if ends_now:
                _bill_soon()
            audit_event(
                locked, event="subscription.cancel", effective_at=effective_at.isoformat(), at_period_end=at_period_end
            )
            ends = effective_at.isoformat()
            subscription_emit("subscription.canceled", locked, reason="requested", effective_at=ends)
    return SubscriptionChange(locked, effective_at, bill, "cancel", preview)


def subscription_resume(*, actor: Actor, subscription: Subscription, at: datetime | None = None) -> Subscription:
    """Take back a cancellation scheduled for the period end: the subscription renews again."""
    at = _instant(at)
    with audit_actor(actor), transaction.atomic():
        locked = subscription_lock(subscription.pk)
        if not locked.cancel_at_period_end or locked.ended_at is None or locked.ended_at <= at:
            raise DomainError(
                "Only a cancellation scheduled for the period end can be taken back.", code="not_resumable"
            )
        state = subscription_state_get(locked)
        last = state.phases[-1]
        phases = (*state.phases[:-1], PhaseState(last.version, last.starts_at, None))
        new_state = state.with_changes(phases=phases, ended_at=None)
        _state_write(locked, new_state, at=at, canceled_at=None, cancel_at_period_end=False)
        audit_event(locked, event="subscription.resume")
        subscription_emit("subscription.resumed", locked)
    return locked


BILL_POINT_FIELDS = [
    "billed_through",
    "next_bill_at",
    "plan_version",
    "current_period_start",
    "current_period_end",
    "status",
]


def subscription_bill_point_advance(
    *, subscription: Subscription, point: datetime, state: SubscriptionState | None = None
) -> None:
    """Move a locked subscription past `point`, its next bill point, once that point's bill is
    stored (invoicing does this in the transaction that writes the invoice): the billed
    watermark, the next bill point, the current version, period and status as of `point`. Sets
    the fields (BILL_POINT_FIELDS) without saving, so a run can save many rows at once."""
    state = state or subscription_state_get(subscription)
    if next_bill_point(state, subscription.billed_through) != point:
        raise ValueError(f"{point.isoformat()} is not subscription {subscription.pk}'s next bill point.")
    state = state.with_changes(billed_through=point)
    subscription.billed_through = point
    subscription.next_bill_at = next_bill_point(state, point)
    subscription.plan_version_id = state.phase_at(point).version.id
    if state.continues_after(point):
        subscription.current_period_start, subscription.current_period_end = _current_period(state, point)
    subscription.status = _status_at(state, point, subscription.status)


PROBLEM_FIELDS = ["billing_problem", "billing_problem_at"]
_PROBLEM_LENGTH = 2000


def subscription_billing_problem_record(*, subscription: Subscription, problem: str, at: datetime) -> bool:
    """Record on a (locked) subscription why the billing run could not bill it, e.g.
    "drafting: pricing_error: Charge 'API calls' …": audited when it is new or differs from the
    one recorded (a run tries again every hour), kept until a run bills it. Written with an
    UPDATE of those two fields only: whatever the failed attempt set on the instance is not
    saved. Whether it changed."""
    problem = problem[:_PROBLEM_LENGTH]
    if subscription.billing_problem == problem:
        return False
    before = subscription.billing_problem
    Subscription.objects.filter(pk=subscription.pk).update(billing_problem=problem, billing_problem_at=at)
    subscription.billing_problem, subscription.billing_problem_at = problem, at
    audit_event(subscription, event="subscription.billing_problem", problem=(before, problem))
    return True


def subscriptions_billing_problem_clear(*, subscriptions: Iterable[Subscription], stage: str) -> list[Subscription]:
    """The (locked) subscriptions a run has just billed through `stage` ("drafting" or
    "finalizing"): a problem recorded at that stage is cleared, and audited. Sets the fields
    (PROBLEM_FIELDS) without saving, for the caller's bulk update; returns the ones it cleared."""
    cleared = []
    for subscription in subscriptions:
        if subscription.billing_problem.startswith(f"{stage}:"):
            audit_event(
                subscription, event="subscription.billing_problem_cleared", problem=(subscription.billing_problem, "")
            )
            subscription.billing_problem, subscription.billing_problem_at = "", None
            cleared.append(subscription)
    return cleared


def subscriptions_end_for_organization(*, organization: Organization, at: datetime) -> list[Subscription]:
    """End every live subscription of a (locked) organization at once, status `ended`: the
    organization is closed. Their final bills credit the unused in-advance fees."""
    ended = []
    for sub in organization.subscriptions.filter(status__in=LIVE_STATUSES).select_related("plan_version__plan"):
        if sub.ended_at is not None and sub.ended_at <= at:
            continue
        state = subscription_state_get(sub)
        effective_at = max(at, state.started_at)
        _state_write(
            sub,
            _ended(state, effective_at),
            at=at,
            status=SubscriptionStatus.ENDED,
            cancel_at_period_end=False,
        )
        audit_event(sub, event="subscription.end", reason="organization_closed", effective_at=effective_at.isoformat())
        ends = effective_at.isoformat()
        subscription_emit("subscription.canceled", sub, reason="organization_closed", effective_at=ends)
        ended.append(sub)
    if ended:
        _bill_soon()
    return ended
