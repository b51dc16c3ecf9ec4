"""What a subscription owes at one bill point: the lines, before tax and credits.

One pure function, `bill_build`, serves the billing run, the upcoming-invoice preview and every
plan-change and cancellation preview, so a preview is line for line what is then billed. It reads
no database: the caller passes the subscription's snapshot (billing.schedule.SubscriptionState),
the usage figures it asked for (`bill_usage_requests`, fetched one by one or in bulk), the
organization's coupon redemptions and what fixed-amount coupons already gave in each period.

At bill point b, closing the segment [a, b) (a: the previous bill point) on version v, with b
followed by version v' (or by nothing, when the subscription ends at b):

- Arrears, over the billable window W = [a, b) outside the trial (usage during a trial is free):
  one usage line per charge (per group value for grouped charges), priced by billing.pricing
  over W's usage; a charge `minimum_amount` true-up, prorated to W; the in-arrears base fee
  prorated to W; the plan's minimum commitment prorated to W, trued up against the usage lines
  and the base fee for W.
- In advance: when v stops at b mid-period (a plan change or an immediate cancellation), what
  earlier invoices billed of v's in-advance fee for the rest of the period [b, E) is credited
  ("Unused time on ..."), and the in-advance fee of v' is charged for [b, E') ("Remaining time on
  ..." mid-period, the whole or first partial period at a period start). A trial defers the
  advance fee to the trial's end; a period end with nothing after it charges nothing in advance.
- The credit for unused time is computed from what was billed, never from the price list: each
  fee line of an earlier non-void invoice (`BilledFee`: the charge after its discounts and less
  what credit notes took back, and earlier credits given back, negative) counts for the share of
  its own service window that falls in [b, E), pro rata to the second. So a voided or
  credit-noted fee is not credited again, a discounted fee is credited as discounted (coupons
  never discount a credit line themselves), and the credits of a period never add up to more
  than what its invoices billed for the fee (each credit is that share rounded half-up, and the
  share left after it is nil).
- Proration is to the second of the whole period (Stripe's rule), each prorated line rounded on
  its own (core.money.prorate). Usage lines are rounded half-up to the currency's minor unit.
- Coupons, before tax, line by line (see `apply_discounts`): a redemption discounts the lines whose
  billing period starts inside what it covers, except credits for unused time (they give back
  what was billed, discounts already taken off). Percentage coupons take their share of each
  line. A fixed coupon gives
  at most its amount per billing period and never takes a line below zero: what a line cannot
  absorb goes to the next eligible line, then to later bill points of the same period; whatever
  is left when the period is over is forfeited (it does not carry into the next period and is
  never paid out).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from billing.pricing import BreakdownItem, ChargeResult, PricingError, price_charge
from billing.schedule import ChargeState, SubscriptionState, VersionState, previous_bill_point, seconds
from core.errors import DomainError
from core.money import Money, prorate, round_fraction, round_money

ZERO = Decimal(0)
_ADDITIVE = frozenset({"count", "sum"})
NO_GROUP = "(none)"  # the label of usage whose group property is missing
# A line's amount must stay below this (in the currency's units): what an invoice stores (20
# integer digits) with room for the sums of its totals. A usage figure priced beyond it is bad
# data, not a bill.
LINE_AMOUNT_LIMIT = Decimal(10) ** 15
LINE_QUANTITY_LIMIT = Decimal(10) ** 26  # a line's quantity: 38 digits, 12 of them decimals


class BillPricingError(DomainError):
    """A charge could not be priced with the usage as it stands (a value the pricing engine
    refuses, an amount past LINE_AMOUNT_LIMIT): the bill names the charge, its meter and the
    window. The API answers it 422; the billing run records it as the subscription's billing
    problem and goes on with the others."""

    code = "pricing_error"
    status_code = 422


class LineKind:
    BASE_FEE = "base_fee"
    BASE_FEE_CREDIT = "base_fee_credit"
    USAGE = "usage"
    CHARGE_MINIMUM = "charge_minimum"
    COMMITMENT = "commitment"
    DISCOUNT = "discount"
    # Late usage of a period already invoiced, billed on a later invoice (invoicing.corrections)
    CORRECTION = "correction"
    # A charge outside any subscription (staff's one-off charge, invoicing.services.one_off): a
    # point in time, recognized when issued
    ONE_OFF = "one_off"


@dataclass(frozen=True)
class UsageRequest:
    """Usage a bill needs: one meter, one customer, one window; split by the meter's group_by
    dimensions (`grouped`) and with each event's value (`values`, for percentage prices)."""

    meter_id: int
    customer: str
    start: datetime
    end: datetime
    grouped: bool = False
    values: bool = False


@dataclass(frozen=True)
class UsageFigures:
    value: Decimal | None
    # keyed by the texts of the meter's group_by paths, in order (only for grouped requests)
    groups: Mapping[tuple[str | None, ...], Decimal | None] = field(default_factory=dict)
    # per group key (() when not grouped): each event's value, in event order
    event_values: Mapping[tuple[str | None, ...], Sequence[Decimal]] | None = None


@dataclass(frozen=True)
class RedemptionState:
    id: int
    coupon_code: str
    coupon_name: str
    discount_type: str  # "percentage" | "fixed"
    percent_off: Decimal | None
    amount_off: Decimal | None
    applies_to: str  # "base_fee" | "charges" | "invoice"
    meter_codes: tuple[str, ...]
    redeemed_at: datetime
    covers_from: datetime
    covers_until: datetime | None
    removed_at: datetime | None = None


@dataclass(frozen=True)
class BillLine:
    kind: str
    description: str
    amount: Money  # rounded to the currency's minor unit
    period_start: datetime  # the service window this line is for
    period_end: datetime
    billing_period_start: datetime  # the whole billing period it belongs to
    billing_period_end: datetime
    quantity: Decimal | None = None
    unit_amount: Decimal | None = None
    plan_version_id: int | None = None
    charge_id: int | None = None
    meter_code: str | None = None
    group: str | None = None
    breakdown: tuple[BreakdownItem, ...] = ()
    proration: tuple[int, int] | None = None  # (seconds billed, seconds in the whole period)
    coupon_redemption_id: int | None = None
    discounts_line: int | None = None  # for a discount: the index of the line it reduces
    charged_at: datetime | None = None  # the bill point
    corrects: int | None = None  # for a correction: the stored usage line it corrects, if any

    @property
    def currency(self) -> str:
        return self.amount.currency


@dataclass(frozen=True)
class BilledUsage:
    """What earlier (finalized) invoices billed for one charge over one window and group: the
    usage line and every correction of it since, summed."""

    charge_id: int
    plan_version_id: int
    window: tuple[datetime, datetime]
    billing_period: tuple[datetime, datetime]
    group: str | None
    quantity: Decimal
    amount: Decimal
    line_id: int | None = None


@dataclass(frozen=True)
class BilledFee:
    """A base fee line of an earlier, non-void invoice of the subscription, as it stands: a
    charge after its discounts and less what credit notes took back of it, or a credit for
    unused time given back (negative). The credit for unused time is computed from these."""

    plan_version_id: int
    billing_period_start: datetime
    window: tuple[datetime, datetime]  # the service it paid for or gave back
    amount: Fraction  # as priced (tax-inclusive when prices are), exact
    bill_point: datetime  # of the invoice it is on


@dataclass(frozen=True)
class Bill:
    subscription_id: int
    point: datetime
    currency: str
    lines: tuple[BillLine, ...]
    timezone: str = "UTC"  # the organization's: the date of supply is the bill point's local date

    @property
    def subtotal(self) -> Money:
        return sum((line.amount for line in self.lines), Money.zero(self.currency))


@dataclass(frozen=True)
class _Segment:
    start: datetime | None  # the previous bill point
    version: VersionState | None  # in effect over [start, point)
    window: tuple[datetime, datetime] | None  # billable (outside the trial), None if empty
    period: tuple[datetime, datetime] | None  # the whole period the segment lies in


def _segment(state: SubscriptionState, point: datetime) -> _Segment:
    start = previous_bill_point(state, point)
    if start is None:
        return _Segment(None, None, None, None)
    version = state.phase_at(start).version
    period = state.period(start, version.interval)
    window_start = max(start, state.trial_end) if state.trial_end else start
    window = (window_start, point) if window_start < point else None
    return _Segment(start, version, window, period)


def bill_usage_requests(state: SubscriptionState, point: datetime) -> list[UsageRequest]:
    """The usage `bill_build` needs for this bill point (empty when no billable segment closes)."""
    segment = _segment(state, point)
    if segment.window is None or segment.version is None:
        return []
    return [_request(state, charge, segment.window) for charge in segment.version.charges]


def _request(state: SubscriptionState, charge: ChargeState, window: tuple[datetime, datetime]) -> UsageRequest:
    return UsageRequest(
        meter_id=charge.meter_id,
        customer=state.customer,
        start=window[0],
        end=window[1],
        grouped=bool(charge.group_property),
        values=any(p.get("model") == "percentage" for p in (charge.price, *(charge.group_prices or {}).values())),
    )


def _combine(aggregation: str, values: list[Decimal | None]) -> Decimal:
    present = [v for v in values if v is not None]
    if not present:
        return ZERO
    if aggregation in _ADDITIVE:
        return sum(present, ZERO)
    if aggregation == "max":
        return max(present)
    if aggregation == "min":
        return min(present)
    # unique_count, latest and weighted_sum do not combine across dimensions; plans only group
    # such meters by their single dimension (billing.services.plan), so there is one value.
    if len(present) != 1:
        raise ValueError(f"{aggregation} usage of several groups cannot be combined")
    return present[0]


def _charge_quantities(
    charge: ChargeState, figures: UsageFigures
) -> list[tuple[str | None, Decimal, Sequence[Decimal] | None]]:
    """(group value, quantity, event values) per priced unit of this charge: one for an
    ungrouped charge, one per value of `group_property` otherwise (sorted, missing values last)."""
    if not charge.group_property:
        values = None if figures.event_values is None else list(figures.event_values.get((), ()))
        return [(None, figures.value if figures.value is not None else ZERO, values)]
    index = charge.meter_group_by.index(charge.group_property)
    by_group: dict[str | None, list[Decimal | None]] = {}
    events: dict[str | None, list[Decimal]] = {}
    for key, value in figures.groups.items():
        by_group.setdefault(key[index], []).append(value)
    if figures.event_values is not None:
        for key, event_values in figures.event_values.items():
            events.setdefault(key[index], []).extend(event_values)
    ordered = sorted(by_group, key=lambda g: (g is None, g or ""))
    return [
        (
            group,
            _combine(charge.aggregation, by_group[group]),
            events.get(group, []) if figures.event_values is not None else None,
        )
        for group in ordered
    ]


def _usage_lines(
    state: SubscriptionState, segment: _Segment, usage: Mapping[UsageRequest, UsageFigures], point: datetime
) -> list[BillLine]:
    assert segment.window is not None and segment.version is not None
    window = segment.window
    lines: list[BillLine] = []
    for charge in segment.version.charges:
        with _pricing(charge, window):
            lines += _charge_lines(state, charge, usage[_request(state, charge, window)], segment, point)
    return lines


@contextmanager
def _pricing(charge: ChargeState, window: tuple[datetime, datetime]) -> Iterator[None]:
    """Whatever stops a charge from being priced becomes a BillPricingError naming it."""
    try:
        yield
    except BillPricingError:
        raise
    except (PricingError, ArithmeticError, ValueError) as exc:  # decimal errors are ArithmeticErrors
        why = f"{exc.message} [{exc.code}]" if isinstance(exc, PricingError) else f"{type(exc).__name__}: {exc}"
        raise BillPricingError(
            f"Charge {charge.label!r} (meter {charge.meter_code!r}) cannot be priced for the usage from "
            f"{window[0].isoformat()} to {window[1].isoformat()}: {why}"
        ) from exc


def _group_priced(
    charge: ChargeState, group: str | None, quantity: Decimal, values: Sequence[Decimal] | None
) -> tuple[Mapping[str, Any], ChargeResult]:
    """The price a group's usage is billed at (its own group price, else the charge's price) and
    what that price makes of the quantity. Usage lines and their later corrections both price
    through here, so a correction re-prices exactly as the line was priced. Event values go to a
    percentage price only (the engine refuses them elsewhere)."""
    price = charge.price
    if group is not None and charge.group_prices and group in charge.group_prices:
        price = charge.group_prices[group]
    return price, price_charge(price, quantity, event_values=values if price.get("model") == "percentage" else None)


def _bounded(amount: Decimal, *, limit: Decimal = LINE_AMOUNT_LIMIT, what: str = "amount") -> Decimal:
    if abs(amount) >= limit:
        raise ValueError(f"the {what} {amount} is past what a line can hold ({limit:,})")
    return amount


def _charge_lines(
    state: SubscriptionState, charge: ChargeState, figures: UsageFigures, segment: _Segment, point: datetime
) -> list[BillLine]:
    assert segment.window is not None and segment.period is not None and segment.version is not None
    window, period, version = segment.window, segment.period, segment.version
    part, whole = seconds(*window), seconds(*period)
    lines: list[BillLine] = []
    for group, quantity, values in _charge_quantities(charge, figures):
        price, result = _group_priced(charge, group, quantity, values)
        label = charge.label if not charge.group_property else f"{charge.label} · {group or NO_GROUP}"
        common: dict[str, Any] = {
            "period_start": window[0],
            "period_end": window[1],
            "billing_period_start": period[0],
            "billing_period_end": period[1],
            "plan_version_id": version.id,
            "charge_id": charge.id,
            "meter_code": charge.meter_code,
            "group": group if charge.group_property else None,
            "charged_at": point,
        }
        amount = _bounded(round_money(result.amount, state.currency))
        unit = Decimal(price["unit_amount"]) if price.get("model") == "per_unit" else None
        lines.append(
            BillLine(
                kind=LineKind.USAGE,
                description=label,
                amount=Money(amount, state.currency),
                quantity=_bounded(quantity, limit=LINE_QUANTITY_LIMIT, what="quantity"),
                unit_amount=unit,
                breakdown=tuple(result.breakdown),
                **common,
            )
        )
        minimum = price.get("minimum_amount")
        if minimum is not None:
            true_up = prorate(Decimal(minimum), part, whole, state.currency) - amount
            if true_up > 0:
                lines.append(
                    BillLine(
                        kind=LineKind.CHARGE_MINIMUM,
                        description=f"{label}: minimum charge",
                        amount=Money(true_up, state.currency),
                        proration=None if part == whole else (part, whole),
                        **common,
                    )
                )
    return lines


def _fee_line(
    *,
    kind: str,
    description: str,
    version: VersionState,
    state: SubscriptionState,
    window: tuple[datetime, datetime],
    period: tuple[datetime, datetime],
    sign: int,
    charged_at: datetime,
) -> BillLine:
    part, whole = seconds(*window), seconds(*period)
    amount = prorate(version.base_fee, part, whole, state.currency)
    return BillLine(
        kind=kind,
        description=description,
        amount=Money(amount if sign > 0 else -amount, state.currency),
        period_start=window[0],
        period_end=window[1],
        billing_period_start=period[0],
        billing_period_end=period[1],
        quantity=Decimal(1),
        unit_amount=version.base_fee,
        plan_version_id=version.id,
        proration=None if part == whole else (part, whole),
        charged_at=charged_at,
    )


def _date(instant: datetime, state: SubscriptionState) -> str:
    return instant.astimezone(ZoneInfo(state.timezone)).strftime("%Y-%m-%d")


def _arrears_lines(
    state: SubscriptionState, segment: _Segment, usage: Mapping[UsageRequest, UsageFigures], point: datetime
) -> list[BillLine]:
    if segment.window is None:
        return []
    assert segment.version is not None and segment.period is not None
    version, window, period = segment.version, segment.window, segment.period
    lines = _usage_lines(state, segment, usage, point)
    fee_share = Money(prorate(version.base_fee, seconds(*window), seconds(*period), state.currency), state.currency)
    if not version.in_advance and version.base_fee > 0:
        partial = window != period
        lines.append(
            _fee_line(
                kind=LineKind.BASE_FEE,
                description=f"{version.plan_name} base fee" + (" (prorated)" if partial else ""),
                version=version,
                state=state,
                window=window,
                period=period,
                sign=1,
                charged_at=point,
            )
        )
    if version.minimum_commitment is not None:
        part, whole = seconds(*window), seconds(*period)
        target = Money(prorate(version.minimum_commitment, part, whole, state.currency), state.currency)
        zero = Money.zero(state.currency)
        covered = sum((line.amount for line in lines if line.kind != LineKind.BASE_FEE), zero) + fee_share
        if target > covered:
            lines.append(
                BillLine(
                    kind=LineKind.COMMITMENT,
                    description=f"{version.plan_name}: minimum commitment",
                    amount=target - covered,
                    period_start=window[0],
                    period_end=window[1],
                    billing_period_start=period[0],
                    billing_period_end=period[1],
                    plan_version_id=version.id,
                    proration=None if part == whole else (part, whole),
                    charged_at=point,
                )
            )
    return lines


def unused_value(
    fees: Sequence[BilledFee],
    *,
    version_id: int,
    period_start: datetime,
    window: tuple[datetime, datetime],
    point: datetime,
) -> Fraction:
    """What the invoices before `point` billed of version `version_id`'s fee for `window` (in
    the period starting at `period_start`), exactly: each fee line's amount times the share of
    its own service window that falls in `window` (charges add, earlier credits take away)."""
    start, end = window
    value = Fraction(0)
    for fee in fees:
        if fee.plan_version_id != version_id or fee.billing_period_start != period_start or fee.bill_point >= point:
            continue
        covered = seconds(*fee.window)
        overlap = seconds(max(fee.window[0], start), min(fee.window[1], end))
        if covered > 0 and overlap > 0:
            value += fee.amount * overlap / covered
    return value


def fees_of(bill: Bill) -> list[BilledFee]:
    """The bill's base fee lines (charges and credits) as BilledFee, each net of its discount
    lines: what a bill made before the one being built counts for, before it is stored."""
    nets: dict[int, Fraction] = {}
    for index, line in enumerate(bill.lines):
        if line.kind in (LineKind.BASE_FEE, LineKind.BASE_FEE_CREDIT) and line.plan_version_id is not None:
            nets[index] = Fraction(line.amount.amount)
        elif line.kind == LineKind.DISCOUNT and line.discounts_line in nets:
            nets[line.discounts_line] += Fraction(line.amount.amount)
    return [
        BilledFee(
            plan_version_id=bill.lines[index].plan_version_id,  # type: ignore[arg-type]
            billing_period_start=bill.lines[index].billing_period_start,
            window=(bill.lines[index].period_start, bill.lines[index].period_end),
            amount=amount,
            bill_point=bill.point,
        )
        for index, amount in nets.items()
    ]


def coupon_used_of(bill: Bill) -> dict[tuple[int, datetime], Decimal]:
    """What the bill's discount lines took, per (redemption, billing period start)."""
    out: dict[tuple[int, datetime], Decimal] = {}
    for line in bill.lines:
        if line.kind == LineKind.DISCOUNT and line.coupon_redemption_id is not None:
            key = (line.coupon_redemption_id, line.billing_period_start)
            out[key] = out.get(key, ZERO) - line.amount.amount
    return out


def _advance_lines(
    state: SubscriptionState, segment: _Segment, point: datetime, fees: Sequence[BilledFee]
) -> list[BillLine]:
    lines: list[BillLine] = []
    trial = state.trial_end
    before = segment.version
    after = state.phase_at(point).version if state.continues_after(point) else None
    changes = before is not None and (after is None or after.id != before.id)
    if before is not None and changes and before.in_advance and before.base_fee > 0 and not (trial and trial >= point):
        assert segment.start is not None
        period_start, period_end = state.period(segment.start, before.interval)
        if point < period_end:
            # What was billed for [point, period_end), not what the price list says: a voided or
            # credit-noted fee is not given back twice, a discounted one only as discounted.
            billed = unused_value(
                fees, version_id=before.id, period_start=period_start, window=(point, period_end), point=point
            )
            credit = round_fraction(max(billed, Fraction(0)), state.currency)
            if credit > 0:
                line = _fee_line(
                    kind=LineKind.BASE_FEE_CREDIT,
                    description=f"Unused time on {before.plan_name} after {_date(point, state)}",
                    version=before,
                    state=state,
                    window=(point, period_end),
                    period=(period_start, period_end),
                    sign=-1,
                    charged_at=point,
                )
                if line.amount.amount != -credit:  # not the list price's share: no unit price to show
                    line = replace(line, amount=Money(-credit, state.currency), quantity=None, unit_amount=None)
                lines.append(line)
    if after is not None and after.in_advance and after.base_fee > 0 and not (trial and trial > point):
        period_start, period_end = state.period(point, after.interval)
        mid_period = point > period_start
        # Mid-period, the advance fee is due only if nothing was charged for the rest of the
        # period yet: at the start, at the trial's end, or when the version changes here.
        if not mid_period or changes or before is None or point == trial:
            if not mid_period:
                description = f"{after.plan_name} base fee"
            elif before is None or (point == trial and not changes):
                description = f"{after.plan_name} base fee (prorated)"
            else:
                description = f"Remaining time on {after.plan_name} after {_date(point, state)}"
            lines.append(
                _fee_line(
                    kind=LineKind.BASE_FEE,
                    description=description,
                    version=after,
                    state=state,
                    window=(point, period_end),
                    period=(period_start, period_end),
                    sign=1,
                    charged_at=point,
                )
            )
    return lines


def _eligible(redemption: RedemptionState, line: BillLine, point: datetime) -> bool:
    if redemption.removed_at is not None and point >= redemption.removed_at:
        return False
    if point < redemption.redeemed_at:
        return False
    if line.kind == LineKind.BASE_FEE_CREDIT:
        return False  # it gives back what was billed, with the discounts the charge had
    start = line.billing_period_start
    if start < redemption.covers_from or (redemption.covers_until is not None and start >= redemption.covers_until):
        return False
    if redemption.applies_to == "base_fee":
        return line.kind in (LineKind.BASE_FEE, LineKind.BASE_FEE_CREDIT)
    if redemption.applies_to == "charges":
        if line.kind not in (LineKind.USAGE, LineKind.CHARGE_MINIMUM, LineKind.CORRECTION):
            return False
        return not redemption.meter_codes or line.meter_code in redemption.meter_codes
    return True


def apply_discounts(
    lines: list[BillLine],
    redemptions: Sequence[RedemptionState],
    coupon_used: Mapping[tuple[int, datetime], Decimal],
    point: datetime,
    currency: str,
) -> list[BillLine]:
    """Each line followed by its discount lines, redemptions in the order they were redeemed,
    each applied to what the previous ones left of the line. Lines already followed by their
    discounts must not be passed again (discount lines are not discounted)."""
    used = dict(coupon_used)
    out: list[BillLine] = []
    for line in lines:
        out.append(line)
        index = len(out) - 1
        net = line.amount
        for redemption in redemptions:
            if net.amount == 0 or not _eligible(redemption, line, point):
                continue
            if redemption.discount_type != "percentage" and line.kind == LineKind.CORRECTION:
                continue  # a fixed coupon's allowance for a period is gone once the period is
            if redemption.discount_type == "percentage":
                assert redemption.percent_off is not None
                off = round_money(net.amount * redemption.percent_off / 100, currency)
            else:
                assert redemption.amount_off is not None
                if net.amount < 0:
                    continue  # a fixed coupon never adds to a credit
                key = (redemption.id, line.billing_period_start)
                available = max(redemption.amount_off - used.get(key, ZERO), ZERO)
                off = min(available, net.amount)
                used[key] = used.get(key, ZERO) + off
            if off == 0:
                continue
            net -= Money(off, currency)
            out.append(
                BillLine(
                    kind=LineKind.DISCOUNT,
                    description=f"{redemption.coupon_name} ({redemption.coupon_code})",
                    amount=Money(-off, currency),
                    period_start=line.period_start,
                    period_end=line.period_end,
                    billing_period_start=line.billing_period_start,
                    billing_period_end=line.billing_period_end,
                    plan_version_id=line.plan_version_id,
                    charge_id=line.charge_id,
                    meter_code=line.meter_code,
                    group=line.group,
                    coupon_redemption_id=redemption.id,
                    discounts_line=index,
                    charged_at=point,
                )
            )
    return out


def _charge_of(state: SubscriptionState, charge_id: int) -> ChargeState:
    for phase in state.phases:
        for charge in phase.version.charges:
            if charge.id == charge_id:
                return charge
    raise ValueError(f"charge {charge_id} is not on subscription {state.id}'s versions")


def corrections_due(state: SubscriptionState, point: datetime, billed: Sequence[BilledUsage]) -> list[BilledUsage]:
    """Of what finalized invoices billed, the windows that may have had late events since the
    previous bill point: events arrive up to `late_days` after their timestamp, so a window that
    ended `late_days` before the previous bill point can no longer change."""
    previous = previous_bill_point(state, point) or point
    since = previous - timedelta(days=state.late_days)
    return [b for b in billed if since < b.window[1] <= point]


def correction_requests(state: SubscriptionState, billed: Sequence[BilledUsage]) -> list[UsageRequest]:
    """The usage needed to re-price what earlier invoices billed (late events)."""
    return sorted(
        {_request(state, _charge_of(state, b.charge_id), b.window) for b in billed},
        key=lambda r: (r.meter_id, r.start, r.end),
    )


def correction_lines(
    state: SubscriptionState, billed: Sequence[BilledUsage], usage: Mapping[UsageRequest, UsageFigures], point: datetime
) -> list[BillLine]:
    """Late usage of windows already invoiced: for each charge, window and group, the price of the
    usage the events now say minus what was billed for it (the usage line and its corrections),
    as its own line. Usage that shrank (events are never removed, but a meter can be rebuilt)
    gives a negative line. Charge minimums and commitments are not trued up again."""
    by_window: dict[tuple[int, tuple[datetime, datetime]], list[BilledUsage]] = {}
    for b in billed:
        by_window.setdefault((b.charge_id, b.window), []).append(b)
    lines: list[BillLine] = []
    for (charge_id, window), items in sorted(by_window.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        charge = _charge_of(state, charge_id)
        with _pricing(charge, window):
            lines += _correction_lines(state, charge, window, items, usage[_request(state, charge, window)], point)
    return lines


def _correction_lines(
    state: SubscriptionState,
    charge: ChargeState,
    window: tuple[datetime, datetime],
    items: list[BilledUsage],
    figures: UsageFigures,
    point: datetime,
) -> list[BillLine]:
    lines: list[BillLine] = []
    billed_by_group = {b.group: b for b in items}
    now = {group: (quantity, values) for group, quantity, values in _charge_quantities(charge, figures)}
    if not charge.group_property:
        now = {None: now[None]}
    for group in sorted(set(now) | set(billed_by_group), key=lambda g: (g is None, g or "")):
        quantity, values = now.get(group, (ZERO, [] if charge.price.get("model") == "percentage" else None))
        _, result = _group_priced(charge, group, quantity, values)
        amount = _bounded(round_money(result.amount, state.currency))
        before = billed_by_group.get(group)
        reference = before or items[0]
        delta = amount - (before.amount if before else ZERO)
        if delta == 0:
            continue
        label = charge.label if not charge.group_property else f"{charge.label} · {group or NO_GROUP}"
        lines.append(
            BillLine(
                kind=LineKind.CORRECTION,
                description=f"{label}: late usage, {_date(window[0], state)} to {_date(window[1], state)}",
                amount=Money(delta, state.currency),
                period_start=window[0],
                period_end=window[1],
                billing_period_start=reference.billing_period[0],
                billing_period_end=reference.billing_period[1],
                quantity=quantity - (before.quantity if before else ZERO),
                plan_version_id=reference.plan_version_id,
                charge_id=charge.id,
                meter_code=charge.meter_code,
                group=group if charge.group_property else None,
                charged_at=point,
                corrects=before.line_id if before else None,
            )
        )
    return lines


def bill_build(
    state: SubscriptionState,
    point: datetime,
    *,
    usage: Mapping[UsageRequest, UsageFigures],
    redemptions: Sequence[RedemptionState] = (),
    coupon_used: Mapping[tuple[int, datetime], Decimal] | None = None,
    billed: Sequence[BilledUsage] = (),
    fees: Sequence[BilledFee] = (),
) -> Bill:
    """The lines due at bill point `point` (see the module docstring). `usage` must hold a figure
    for every request of `bill_usage_requests(state, point)`; `coupon_used` maps (redemption id,
    billing period start) to what that fixed-amount redemption already discounted in the period
    on earlier bills; `billed` is what finalized invoices billed for windows that may have had
    late events (`correction_lines`; their usage must be in `usage`, see `correction_requests`);
    `fees` is what earlier non-void invoices (and earlier bills not stored yet) billed of base
    fees, which is all a credit for unused time can give back (none without it)."""
    segment = _segment(state, point)
    closing = state.ended_at is not None and segment.start is not None and segment.start >= state.ended_at
    lines = [] if closing else _arrears_lines(state, segment, usage, point)  # after the end: late usage only
    lines += correction_lines(state, billed, usage, point) if billed else []
    lines += [] if closing else _advance_lines(state, segment, point, fees)
    lines = apply_discounts(lines, redemptions, coupon_used or {}, point, state.currency)
    return Bill(
        subscription_id=state.id,
        point=point,
        currency=state.currency,
        lines=tuple(lines),
        timezone=state.timezone,
    )
