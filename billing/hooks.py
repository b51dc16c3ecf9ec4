"""What billing needs to know from the floor above without importing it.

Previews computed in billing (a plan change, a cancellation) need what invoicing knows from its
invoice lines: what each fixed-amount coupon already gave in the current billing period, what
finalized invoices billed for windows that late events may still change (correction lines), and
what non-void invoices billed of base fees, net of credit notes (the credit for unused time).
invoicing installs its providers when it loads (InvoicingConfig.ready).

A provider that is not installed is an error, never "nothing was invoiced": a preview made
without one would silently differ from the invoice (no corrections, no credit for unused time,
coupons given twice). Calling it raises `HookMissing`, and the system check `billing.E001`
(billing.apps) refuses to start a process in which one is missing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured

from billing.bill import BilledFee, BilledUsage
from billing.schedule import SubscriptionState

CouponUsedProvider = Callable[[SubscriptionState, datetime], Mapping[tuple[int, datetime], Decimal]]
BilledProvider = Callable[[SubscriptionState], list[BilledUsage]]
FeesProvider = Callable[[SubscriptionState], list[BilledFee]]

COUPON_USED, BILLED, FEES = "coupon_used", "billed", "fees"
HOOKS = (COUPON_USED, BILLED, FEES)

# One process-wide registration per hook (set in InvoicingConfig.ready).
_providers: dict[str, Callable] = {}


class HookMissing(ImproperlyConfigured):
    """A billing hook was called with no provider installed (the app that provides it, invoicing,
    is not installed or not ready)."""


def _provider(name: str) -> Callable:
    try:
        return _providers[name]
    except KeyError:
        raise HookMissing(
            f"billing.hooks: no {name!r} provider is installed; invoicing installs it in "
            "InvoicingConfig.ready (is 'invoicing' in INSTALLED_APPS?)."
        ) from None


def hooks_missing() -> list[str]:
    """The hooks without a provider, in HOOKS order."""
    return [name for name in HOOKS if name not in _providers]


def coupon_used_provider(state: SubscriptionState, point: datetime) -> Mapping[tuple[int, datetime], Decimal]:
    return _provider(COUPON_USED)(state, point)


def coupon_used_provider_set(provider: CouponUsedProvider) -> None:
    _providers[COUPON_USED] = provider


def billed_provider(state: SubscriptionState) -> list[BilledUsage]:
    return _provider(BILLED)(state)


def billed_provider_set(provider: BilledProvider) -> None:
    _providers[BILLED] = provider


def fees_provider(state: SubscriptionState) -> list[BilledFee]:
    return _provider(FEES)(state)


def fees_provider_set(provider: FeesProvider) -> None:
    _providers[FEES] = provider


# Gates a plan change must pass (dunning's "plan changes blocked from the policy's day" installs
# one in DunningConfig.ready). A gate refuses by raising a DomainError. Unlike the providers
# above, none installed means nothing refuses: billing by itself has no reason to.
PlanChangeGate = Callable[[int, datetime], None]  # (organization id, instant of the change)

_plan_change_gates: list[PlanChangeGate] = []


def plan_change_gate_add(gate: PlanChangeGate) -> None:
    if gate not in _plan_change_gates:
        _plan_change_gates.append(gate)


def plan_change_gates_run(*, organization_id: int, at: datetime) -> None:
    for gate in _plan_change_gates:
        gate(organization_id, at)


# Listeners told when a plan's usage limit was raised or removed (portal.alerts installs one in
# PortalConfig.ready: it lifts the blocks that limit recorded this period and evaluates again).
# Called after the change commits, with the plan's id and the meters' ids.
PlanLimitsRaised = Callable[[int, list[int]], None]

_plan_limits_raised: list[PlanLimitsRaised] = []


def plan_limits_raised_add(listener: PlanLimitsRaised) -> None:
    if listener not in _plan_limits_raised:
        _plan_limits_raised.append(listener)


def plan_limits_raised_run(*, plan_id: int, meter_ids: list[int]) -> None:
    for listener in _plan_limits_raised:
        listener(plan_id, meter_ids)
