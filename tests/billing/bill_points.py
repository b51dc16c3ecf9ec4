"""Moving a subscription past a bill point without billing it, for tests of what the next bill
holds (the billing run does this with its invoices: invoicing.services.billing_run)."""

from __future__ import annotations

from datetime import datetime

from billing.models import Subscription
from billing.services.subscription import BILL_POINT_FIELDS, subscription_bill_point_advance


def bill_point_close(*, subscription: Subscription, point: datetime) -> Subscription:
    """`subscription_bill_point_advance` for one subscription, saved."""
    subscription_bill_point_advance(subscription=subscription, point=point)
    subscription.save(update_fields=BILL_POINT_FIELDS)
    return subscription
