"""What earlier invoices billed, as the bill builder needs it: usage per window for late-event
corrections, and what fixed-amount coupons already gave per billing period. One query each for
any number of subscriptions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db.models import Min, Sum

from billing.bill import BilledUsage, LineKind
from invoicing.models import InvoiceLine, InvoiceStatus

ZERO = Decimal(0)
# What a customer was asked for: void invoices never count.
_BILLED = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE)


def billed_usage_get(*, subscription_ids: Iterable[int], since: datetime) -> dict[int, list[BilledUsage]]:
    """Per subscription, what finalized invoices billed for each charge, window and group whose
    window ends after `since` (older windows can no longer receive events)."""
    rows = (
        InvoiceLine.objects.filter(
            invoice__subscription_id__in=list(subscription_ids),
            invoice__status__in=_BILLED,
            kind__in=(LineKind.USAGE, LineKind.CORRECTION),
            period_end__gt=since,
            charge__isnull=False,
        )
        .values(
            "invoice__subscription_id",
            "charge_id",
            "plan_version_id",
            "period_start",
            "period_end",
            "billing_period_start",
            "billing_period_end",
            "group",
        )
        .annotate(quantity=Sum("quantity"), amount=Sum("amount"), line_id=Min("id"))
    )
    out: dict[int, list[BilledUsage]] = defaultdict(list)
    for row in rows:
        out[row["invoice__subscription_id"]].append(
            BilledUsage(
                charge_id=row["charge_id"],
                plan_version_id=row["plan_version_id"],
                window=(row["period_start"], row["period_end"]),
                billing_period=(row["billing_period_start"], row["billing_period_end"]),
                group=row["group"],
                quantity=row["quantity"] or ZERO,
                amount=row["amount"] or ZERO,
                line_id=row["line_id"],
            )
        )
    for items in out.values():
        items.sort(key=lambda b: (b.window, b.charge_id, b.group is None, b.group or ""))
    return out


def coupon_used_get(
    *,
    subscription_ids: Iterable[int],
    exclude_invoice_ids: Iterable[int] = (),
    exclude_points: Iterable[datetime] = (),
) -> dict[int, dict[tuple[int, datetime], Decimal]]:
    """Per subscription: (redemption, billing period start) -> what that redemption's discount
    lines took on its non-void invoices, other than the excluded ones (an invoice being re-made)."""
    rows = (
        InvoiceLine.objects.filter(
            invoice__subscription_id__in=list(subscription_ids),
            kind=LineKind.DISCOUNT,
            coupon_redemption__coupon__discount_type="fixed",
        )
        .exclude(invoice__status=InvoiceStatus.VOID)
        .exclude(invoice_id__in=list(exclude_invoice_ids))
        .exclude(invoice__bill_point__in=list(exclude_points))
        .values("invoice__subscription_id", "coupon_redemption_id", "billing_period_start")
        .annotate(total=Sum("amount"))
    )
    out: dict[int, dict[tuple[int, datetime], Decimal]] = defaultdict(dict)
    for row in rows:
        out[row["invoice__subscription_id"]][(row["coupon_redemption_id"], row["billing_period_start"])] = -row["total"]
    return out
