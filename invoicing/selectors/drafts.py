"""Drafting, as a read: the invoice drafts of the bill points due for many subscriptions, composed
from their snapshots, the usage as it stands and what earlier invoices billed (set-wise: one
query per kind of figure for the whole batch). Writes nothing: the billing run stores what it
returns, finalization re-makes a draft with it, and the upcoming-invoice preview shows it, so all
three compose the same way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from billing.bill import bill_build, bill_usage_requests, correction_requests, corrections_due, coupon_used_of, fees_of
from billing.models import Subscription
from billing.schedule import SubscriptionState, next_bill_point, previous_bill_point
from billing.selectors.bill import usage_figures
from billing.selectors.subscription_state import redemption_states, subscription_states
from invoicing.compose import InvoiceDraft, invoice_compose
from invoicing.models import InvoicingSettings
from invoicing.selectors.billed import billed_usage_get, coupon_used_get, fees_billed_get
from invoicing.selectors.settings import tax_context_for, tax_settings_from


@dataclass(frozen=True)
class Due:
    subscription: Subscription
    point: datetime
    draft: InvoiceDraft
    state: SubscriptionState  # the snapshot the draft was composed from (before the point)


def compose_due(
    subscriptions: Sequence[Subscription],
    *,
    at: datetime,
    settings: InvoicingSettings,
    points: dict[int, datetime] | None = None,
    exclude_invoice_ids: Iterable[int] = (),
    states: dict[int, SubscriptionState] | None = None,
) -> list[Due]:
    """The drafts of every bill point due by `at` for these subscriptions (with their
    organization loaded), in order: each subscription's points one after another, as if each
    had been billed in turn (its snapshot moves past each point in memory; nothing is written).
    `points` pins the one bill point to compose per subscription (a draft being re-made);
    `states`: their states when the caller has just read them (the preview), not read again."""
    if not subscriptions:
        return []
    tax_settings = tax_settings_from(settings)
    if states is None:
        states = subscription_states(subscriptions)
    by_id = {s.pk: s for s in subscriptions}
    redemptions = redemption_states({s.organization_id for s in subscriptions})
    used = coupon_used_get(subscription_ids=list(by_id), exclude_invoice_ids=exclude_invoice_ids)
    # what finalized invoices billed, back to the earliest window a late event may still change
    firsts = {
        sid: points[sid] if points else next_bill_point(state, state.billed_through) for sid, state in states.items()
    }
    previous = [previous_bill_point(states[sid], p) or p for sid, p in firsts.items() if p is not None]
    late = max((state.late_days for state in states.values()), default=0)
    since = min(previous, default=at) - timedelta(days=late)
    billed = billed_usage_get(subscription_ids=list(by_id), since=since)
    # Base fees billed so far, for the credit for unused time: only a subscription that changes
    # version or ends can be owed one, so the month-end run of unchanged ones reads none.
    changing = [sid for sid, state in states.items() if len(state.phases) > 1 or state.ended_at is not None]
    stored = (
        fees_billed_get(
            subscription_ids=changing, since=min(previous, default=at), exclude_invoice_ids=exclude_invoice_ids
        )
        if changing
        else {}
    )
    fees = {sid: stored.get(sid, []) for sid in changing}
    out: list[Due] = []
    current = {sid: states[sid] for sid in by_id}
    while current:
        due: dict[int, datetime] = {}
        for sid, state in current.items():
            point = points[sid] if points else next_bill_point(state, state.billed_through)
            if point is not None and point <= at:
                due[sid] = point
        if not due:
            break
        requests = []
        billed_now = {}
        for sid, point in due.items():
            state = current[sid]
            billed_now[sid] = corrections_due(state, point, billed.get(sid, []))
            requests += bill_usage_requests(state, point) + correction_requests(state, billed_now[sid])
        usage = usage_figures(requests)
        for sid, point in due.items():
            state = current[sid]
            subscription = by_id[sid]
            bill = bill_build(
                state,
                point,
                usage=usage,
                redemptions=redemptions.get(subscription.organization_id, []),
                coupon_used=used.get(sid, {}),
                billed=billed_now[sid],
                fees=fees.get(sid, ()),
            )
            draft = invoice_compose(bill, tax=tax_context_for(subscription.organization, tax_settings=tax_settings))
            out.append(Due(subscription, point, draft, state))
            for key, amount in coupon_used_of(bill).items():
                used.setdefault(sid, {})[key] = used.get(sid, {}).get(key, Decimal(0)) + amount
            if sid in fees:
                fees[sid] = [*fees[sid], *fees_of(bill)]
            current[sid] = state.with_changes(billed_through=point)
        if points:
            break
    return out
