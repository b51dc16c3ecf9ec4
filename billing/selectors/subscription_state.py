"""Snapshots for billing.schedule and billing.bill, read in a fixed number of queries for any
number of subscriptions (the billing run reads thousands at once)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Prefetch

from billing.bill import RedemptionState
from billing.models import CouponRedemption, PlanCharge, PlanVersion, Subscription, SubscriptionPhase
from billing.schedule import ChargeState, PhaseState, SubscriptionState, VersionState
from tenants.selectors import tenant_event_window_days


def _version_state(version: PlanVersion) -> VersionState:
    plan = version.plan
    return VersionState(
        id=version.pk,
        plan_code=plan.code,
        plan_name=plan.name,
        version=version.version,
        interval=plan.interval,
        currency=plan.currency,
        base_fee=version.base_fee,
        base_fee_timing=version.base_fee_timing,
        minimum_commitment=version.minimum_commitment,
        charges=tuple(
            ChargeState(
                id=charge.pk,
                meter_id=charge.meter_id,
                meter_code=charge.meter.code,
                meter_name=charge.meter.name,
                aggregation=charge.meter.aggregation,
                meter_group_by=tuple(charge.meter.group_by),
                name=charge.name,
                price=charge.price,
                group_property=charge.group_property,
                group_prices=charge.group_prices or None,
            )
            for charge in version.charges.all()
        ),
    )


def version_states(version_ids: Iterable[int]) -> dict[int, VersionState]:
    versions = PlanVersion.objects.filter(pk__in=set(version_ids)).select_related("plan")
    versions = versions.prefetch_related(
        Prefetch("charges", queryset=PlanCharge.objects.select_related("meter").order_by("position", "id"))
    )
    return {v.pk: _version_state(v) for v in versions}


def subscription_state_from(
    subscription: Subscription, phases: list[SubscriptionPhase], versions, *, late_days: int = 0
) -> SubscriptionState:
    organization = subscription.organization
    return SubscriptionState(
        id=subscription.pk,
        organization_id=organization.pk,
        customer=organization.external_id,
        currency=subscription.plan_version.plan.currency,
        timezone=organization.timezone,
        billing_mode=subscription.billing_mode,
        billing_anchor=subscription.billing_anchor,
        started_at=subscription.started_at,
        trial_end=subscription.trial_end,
        ended_at=subscription.ended_at,
        billed_through=subscription.billed_through,
        phases=tuple(PhaseState(versions[p.plan_version_id], p.starts_at, p.ends_at) for p in phases),
        late_days=late_days,
    )


def subscription_states(subscriptions: Iterable[Subscription]) -> dict[int, SubscriptionState]:
    """Snapshots of the given subscriptions (with organization and plan_version.plan loaded, or
    they are loaded here): one query for the phases, one for the versions and their charges."""
    subscriptions = list(subscriptions)
    ids = [s.pk for s in subscriptions]
    phases: dict[int, list[SubscriptionPhase]] = defaultdict(list)
    for phase in SubscriptionPhase.objects.filter(subscription_id__in=ids).order_by("subscription_id", "starts_at"):
        phases[phase.subscription_id].append(phase)
    versions = version_states({p.plan_version_id for ps in phases.values() for p in ps})
    late = tenant_event_window_days()
    return {s.pk: subscription_state_from(s, phases[s.pk], versions, late_days=late) for s in subscriptions}


def subscription_state_get(subscription: Subscription) -> SubscriptionState:
    return subscription_states([subscription])[subscription.pk]


def redemption_states(organization_ids: Iterable[int]) -> dict[int, list[RedemptionState]]:
    """Each organization's coupon redemptions in the order they were redeemed."""
    out: dict[int, list[RedemptionState]] = defaultdict(list)
    redemptions = CouponRedemption.objects.filter(organization_id__in=set(organization_ids)).select_related("coupon")
    for r in redemptions.order_by("redeemed_at", "id"):
        coupon = r.coupon
        out[r.organization_id].append(
            RedemptionState(
                id=r.pk,
                coupon_code=coupon.code,
                coupon_name=coupon.name,
                discount_type=coupon.discount_type,
                percent_off=coupon.percent_off,
                amount_off=coupon.amount_off,
                applies_to=coupon.applies_to,
                meter_codes=tuple(coupon.meter_codes),
                redeemed_at=r.redeemed_at,
                covers_from=r.covers_from,
                covers_until=r.covers_until,
                removed_at=r.removed_at,
            )
        )
    return out
