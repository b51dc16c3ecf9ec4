"""Reading what bills need: usage figures for many requests at once (through metering's bulk
selectors: one statement per meter and kind of request, however many subscriptions), and the
bill of one subscription at one bill point."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Context, Decimal, DecimalException, Inexact, InvalidOperation, Overflow, localcontext

from billing import hooks
from billing.bill import (
    Bill,
    BillPricingError,
    UsageFigures,
    UsageRequest,
    bill_build,
    bill_usage_requests,
    correction_requests,
    corrections_due,
    coupon_used_of,
    fees_of,
)
from billing.schedule import SubscriptionState, bill_points
from billing.selectors.subscription_state import redemption_states
from metering.models import Meter
from metering.selectors.usage_bulk import UsageWindow, event_values_bulk, usage_bulk


def usage_figures(requests: Iterable[UsageRequest]) -> dict[UsageRequest, UsageFigures]:
    """Figures for every request; requests for one meter are answered together."""
    by_kind: dict[tuple[int, bool, bool], set[UsageRequest]] = defaultdict(set)
    for request in requests:
        by_kind[(request.meter_id, request.grouped, request.values)].add(request)
    meters = Meter.objects.in_bulk({meter_id for meter_id, _, _ in by_kind})
    out: dict[UsageRequest, UsageFigures] = {}
    for (meter_id, grouped, values), batch in by_kind.items():
        meter = meters[meter_id]
        windows = {r: UsageWindow(customer=r.customer, start=r.start, end=r.end) for r in batch}
        if values:
            out.update(_from_event_values(meter, windows, grouped=grouped))
            continue
        figures = usage_bulk(meter=meter, windows=list(set(windows.values())), group_by=grouped)
        for request, window in windows.items():
            result = figures[window]
            out[request] = UsageFigures(value=result.value, groups=result.groups if grouped else {})
    return out


# Enough digits for any sum of event values a meter accepts; past it the sum is refused, not rounded.
_SUM_CONTEXT = Context(prec=200, traps=[Inexact, InvalidOperation, Overflow])


def _from_event_values(
    meter: Meter, windows: dict[UsageRequest, UsageWindow], *, grouped: bool
) -> dict[UsageRequest, UsageFigures]:
    """A percentage price takes its share of each event and checks that the events add up to the
    quantity: both come from one statement (the events' values), so they are one snapshot. Read
    in two statements, a drain committing between them made them disagree
    (event_values_mismatch). The sum of a sum meter's events is its value by definition; groups
    with no valued event do not appear (their share of nothing is nothing)."""
    events = event_values_bulk(meter=meter, windows=list(set(windows.values())), group_by=grouped)
    out = {}
    for request, window in windows.items():
        by_group = events[window]
        try:
            with localcontext(_SUM_CONTEXT):
                groups = {group: sum(values, Decimal(0)) for group, values in by_group.items()}
                total = sum(groups.values(), Decimal(0))
        except DecimalException as exc:
            raise BillPricingError(
                f"Meter {meter.code!r}: the event values of {request.customer!r} from {request.start.isoformat()} "
                f"to {request.end.isoformat()} do not add up exactly ({type(exc).__name__})."
            ) from exc
        out[request] = UsageFigures(value=total, groups=groups if grouped else {}, event_values=by_group)
    return out


def bill_get(
    state: SubscriptionState,
    point: datetime,
    *,
    usage_adjust: Callable[[dict[UsageRequest, UsageFigures]], dict[UsageRequest, UsageFigures]] | None = None,
) -> Bill:
    """The bill of one subscription at one of its bill points, with the usage as stored now, the
    organization's coupons, what fixed coupons already gave this period, the corrections of late
    usage and the base fees billed so far (billing.hooks): what the billing run would bill at
    that point. Bill points before it that the run has not billed yet are billed first (the run
    bills a subscription's points in order), so what they charge counts here as it will then.

    `usage_adjust` replaces the usage figures of `point`'s own bill before it is priced (the
    portal's cost projection prices projected usage this way, through the same engine)."""
    return bills_get(state, point, usage_adjusts=[usage_adjust])[0]


def bills_get(
    state: SubscriptionState,
    point: datetime,
    *,
    usage_adjusts: Sequence[Callable[[dict[UsageRequest, UsageFigures]], dict[UsageRequest, UsageFigures]] | None],
) -> list[Bill]:
    """bill_get's bill once per entry of `usage_adjusts` (None: the usage as stored), all from
    one read of the billing state and of the usage: the engine prices in memory, so pricing the
    portal's low, expected and high projections costs one bill's statements, not three."""
    billed = hooks.billed_provider(state)
    fees = list(hooks.fees_provider(state))
    redemptions = redemption_states([state.organization_id]).get(state.organization_id, [])
    coupon_used = dict(hooks.coupon_used_provider(state, point)) if redemptions else {}
    for earlier in bill_points(state, after=state.billed_through, until=point):
        if earlier >= point:
            break
        bill = _bill_at(state, earlier, billed, fees, redemptions, coupon_used)[0]
        fees += fees_of(bill)
        for key, amount in coupon_used_of(bill).items():
            coupon_used[key] = coupon_used.get(key, 0) + amount
        state = state.with_changes(billed_through=earlier)
    return _bill_at(state, point, billed, fees, redemptions, coupon_used, usage_adjusts=usage_adjusts)


def _bill_at(state, point, billed, fees, redemptions, coupon_used, *, usage_adjusts=(None,)) -> list[Bill]:
    due = corrections_due(state, point, billed)
    usage = usage_figures(bill_usage_requests(state, point) + correction_requests(state, due))
    return [
        bill_build(
            state,
            point,
            usage=usage if adjust is None else adjust(usage),
            redemptions=redemptions,
            coupon_used=coupon_used,
            billed=due,
            fees=fees,
        )
        for adjust in usage_adjusts
    ]
