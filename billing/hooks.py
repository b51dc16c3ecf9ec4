"""What billing needs to know from the floor above without importing it.

Previews computed in billing (a plan change, a cancellation) need what each fixed-amount coupon
already gave in the current billing period, which only invoicing knows (its invoice lines).
invoicing installs its provider when it loads (InvoicingConfig.ready); until then nothing was
invoiced, so nothing was used."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal

from billing.schedule import SubscriptionState

CouponUsedProvider = Callable[[SubscriptionState, datetime], Mapping[tuple[int, datetime], Decimal]]


def _nothing_used(state: SubscriptionState, point: datetime) -> Mapping[tuple[int, datetime], Decimal]:
    return {}


coupon_used_provider: CouponUsedProvider = _nothing_used


def coupon_used_provider_set(provider: CouponUsedProvider) -> None:
    global coupon_used_provider  # one process-wide registration
    coupon_used_provider = provider
