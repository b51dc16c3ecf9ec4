"""The upcoming invoice of an organization: what its subscriptions' next bill points would bill
with the usage as it stands now. It goes through the billing run's own composition
(invoicing.selectors.drafts.compose_due) and writes nothing."""

from __future__ import annotations

from billing.models import LIVE_STATUSES, Organization, Subscription
from billing.schedule import SubscriptionState, next_bill_point
from billing.selectors.subscription_state import subscription_states
from invoicing.compose import InvoiceDraft
from invoicing.selectors.drafts import compose_due
from invoicing.selectors.settings import invoicing_settings_get


def invoice_preview_get(
    *, organization: Organization, states: dict[int, SubscriptionState] | None = None
) -> list[InvoiceDraft]:
    """One draft per live subscription of the organization, for its next bill point. `states`:
    subscription states the caller has already read in this request (the portal's projection),
    by subscription id; only the others are read (once, shared with the composition)."""
    subscriptions = list(
        Subscription.objects.filter(organization=organization, status__in=LIVE_STATUSES)
        .select_related("organization", "plan_version__plan")
        .order_by("id")
    )
    known = states or {}
    missing = [s for s in subscriptions if s.pk not in known]
    states = {**known, **(subscription_states(missing) if missing else {})}
    points = {}
    for sub in subscriptions:
        point = next_bill_point(states[sub.pk], sub.billed_through)
        if point is not None:
            points[sub.pk] = point
    subscriptions = [s for s in subscriptions if s.pk in points]
    if not subscriptions:
        return []
    dues = compose_due(
        subscriptions,
        at=max(points.values()),
        settings=invoicing_settings_get(),
        points=points,
        states={s.pk: states[s.pk] for s in subscriptions},
    )
    return [due.draft for due in dues]
