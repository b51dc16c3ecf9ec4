"""When a subscription is billed: its bill points.

A bill point is an instant at which an invoice is due for a subscription. They are, in order:

- the start (`started_at`): the in-advance base fee of the first (possibly partial) period;
- the end of every billing period (usage and in-arrears fees of the period that closed, the
  in-advance fee of the next one);
- the end of the trial, when it falls inside a period (the in-advance fee for the rest of it);
- every plan change (the usage so far under the old version, the proration of the base fee);
- the end of the subscription (`ended_at`: an immediate cancellation, or the period end for a
  cancellation at period end, which is also a period end);
- the closing point, `late_days` after the end: late usage of the last periods (corrections only).

Between two consecutive bill points the subscription is on one version and inside one period, so
each bill closes exactly one segment [previous bill point, bill point). Everything here is
computed from `SubscriptionState`, an immutable snapshot of the subscription and its phases, with
no database access, so the billing run and every preview compute the same points.

Periods follow billing.periods: calendar periods (the 1st in the organization's timezone) or
anniversary periods from the immutable anchor, in the interval of the plan the subscription is on
at that time (a change from a monthly to a yearly plan continues on yearly periods from the same
anchor).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from billing.periods import anniversary_period_containing, calendar_period_containing


# Period arithmetic is pure, and the billing run asks for the same few periods over and over
# (every subscription of a timezone shares its calendar periods; a bill asks ~13 times): zoneinfo
# and relativedelta cost ~9 µs a call, a cache hit 0.1 µs (130,000 calls for 10,000 month-end
# bills: 1.2 s; bench/billing.py). Results depend only on the arguments (equal instants give
# equal periods whatever their tzinfo), so caching changes nothing but the time.
@lru_cache(maxsize=65536)
def _calendar_period(instant: datetime, timezone: str, interval: str) -> tuple[datetime, datetime]:
    return calendar_period_containing(instant=instant, timezone=timezone, interval=interval)


@lru_cache(maxsize=65536)
def _anniversary_period(anchor: datetime, timezone: str, interval: str, instant: datetime) -> tuple[datetime, datetime]:
    return anniversary_period_containing(anchor=anchor, timezone=timezone, interval=interval, instant=instant)


@dataclass(frozen=True)
class ChargeState:
    id: int
    meter_id: int
    meter_code: str
    meter_name: str
    aggregation: str
    meter_group_by: tuple[str, ...]
    name: str
    price: dict[str, Any]
    group_property: str = ""
    group_prices: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return self.name or self.meter_name


@dataclass(frozen=True)
class VersionState:
    id: int
    plan_code: str
    plan_name: str
    version: int
    interval: str
    currency: str
    base_fee: Decimal
    base_fee_timing: str
    minimum_commitment: Decimal | None
    charges: tuple[ChargeState, ...]

    @property
    def in_advance(self) -> bool:
        return self.base_fee_timing == "advance"


@dataclass(frozen=True)
class PhaseState:
    version: VersionState
    starts_at: datetime
    ends_at: datetime | None  # None: open

    def contains(self, instant: datetime) -> bool:
        return self.starts_at <= instant and (self.ends_at is None or instant < self.ends_at)


@dataclass(frozen=True)
class SubscriptionState:
    id: int
    organization_id: int
    customer: str  # the organization's external id: what its usage events carry
    currency: str
    timezone: str
    billing_mode: str
    billing_anchor: datetime
    started_at: datetime
    trial_end: datetime | None
    ended_at: datetime | None
    billed_through: datetime | None
    phases: tuple[PhaseState, ...]  # contiguous, ordered by starts_at
    # How late usage events may arrive (the tenant's event window): an ended subscription has
    # one more bill point this long after its end, for late usage of its last periods.
    late_days: int = 0

    def phase_at(self, instant: datetime) -> PhaseState:
        """The phase in effect at `instant` (the first one for instants before the start)."""
        if instant < self.phases[0].starts_at:
            return self.phases[0]
        for phase in self.phases:
            if phase.contains(instant):
                return phase
        return self.phases[-1]  # at or after the last phase's end: it was the last in effect

    def period(self, instant: datetime, interval: str | None = None) -> tuple[datetime, datetime]:
        """The whole billing period [start, end) containing `instant`, in the interval of the plan
        in effect then (or `interval`). Not clipped to the subscription's start."""
        interval = interval or self.phase_at(instant).version.interval
        if self.billing_mode == "anniversary":
            return _anniversary_period(self.billing_anchor, self.timezone, interval, instant)
        return _calendar_period(instant, self.timezone, interval)

    def in_trial(self, instant: datetime) -> bool:
        return self.trial_end is not None and instant < self.trial_end

    def continues_after(self, instant: datetime) -> bool:
        return self.ended_at is None or instant < self.ended_at

    def with_changes(self, **changes: Any) -> SubscriptionState:
        return replace(self, **changes)


def next_bill_point(state: SubscriptionState, after: datetime | None) -> datetime | None:
    """The first bill point strictly after `after` (None: the start), or None once it has ended."""
    if after is None:
        return state.started_at
    if state.ended_at is not None and after >= state.ended_at:
        closing = state.ended_at + timedelta(days=state.late_days)
        return closing if state.late_days and after < closing else None
    candidates = [state.period(after)[1]]
    candidates += [p.starts_at for p in state.phases if p.starts_at > after]
    if state.trial_end is not None and state.trial_end > after:
        candidates.append(state.trial_end)
    if state.ended_at is not None:
        candidates.append(state.ended_at)
    return min(candidates)


def bill_points(state: SubscriptionState, *, after: datetime | None, until: datetime) -> Iterator[datetime]:
    """Bill points after `after` (None: from the start) up to and including `until`."""
    point = next_bill_point(state, after)
    while point is not None and point <= until:
        yield point
        point = next_bill_point(state, point)


def previous_bill_point(state: SubscriptionState, point: datetime) -> datetime | None:
    """The bill point before `point` (None for the start). `point` must be a bill point."""
    if point <= state.started_at:
        return None
    previous = state.billed_through if state.billed_through is not None and state.billed_through < point else None
    current = next_bill_point(state, previous)
    while current is not None and current < point:
        previous, current = current, next_bill_point(state, current)
    if current != point:
        raise ValueError(f"{point.isoformat()} is not a bill point of subscription {state.id}.")
    return previous


def seconds(start: datetime, end: datetime) -> int:
    """Whole seconds in [start, end): periods and bill points fall on whole seconds."""
    return int((end - start).total_seconds())
