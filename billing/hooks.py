"""What billing needs to know from the floor above without importing it.

Previews computed in billing (a plan change, a cancellation) need what invoicing knows from its
invoice lines: what each fixed-amount coupon already gave in the current billing period, what
finalized invoices billed for windows that late events may still change (correction lines), and
what non-void invoices billed of base fees, net of credit notes (the credit for unused time).
invoicing installs its providers when it loads (InvoicingConfig.ready); until then nothing was
invoiced."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal

from billing.bill import BilledFee, BilledUsage
from billing.schedule import SubscriptionState

CouponUsedProvider = Callable[[SubscriptionState, datetime], Mapping[tuple[int, datetime], Decimal]]


def _nothing_used(state: SubscriptionState, point: datetime) -> Mapping[tuple[int, datetime], Decimal]:
    return {}


coupon_used_provider: CouponUsedProvider = _nothing_used


def coupon_used_provider_set(provider: CouponUsedProvider) -> None:
    global coupon_used_provider  # one process-wide registration
    coupon_used_provider = provider


BilledProvider = Callable[[SubscriptionState], list[BilledUsage]]


def _nothing_billed(state: SubscriptionState) -> list[BilledUsage]:
    return []


billed_provider: BilledProvider = _nothing_billed


def billed_provider_set(provider: BilledProvider) -> None:
    global billed_provider  # one process-wide registration
    billed_provider = provider


FeesProvider = Callable[[SubscriptionState], list[BilledFee]]


def _no_fees(state: SubscriptionState) -> list[BilledFee]:
    return []


fees_provider: FeesProvider = _no_fees


def fees_provider_set(provider: FeesProvider) -> None:
    global fees_provider  # one process-wide registration
    fees_provider = provider
