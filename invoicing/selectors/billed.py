"""What earlier invoices billed, as the bill builder needs it: usage per window for late-event
corrections, what fixed-amount coupons already gave per billing period, and the base fees billed
net of discounts, voids and credit notes (the credit for unused time). One query each for any
number of subscriptions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from django.db.models import Min, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from billing.bill import BilledFee, BilledUsage, LineKind
from invoicing.models import CreditNoteLine, InvoiceLine, InvoiceStatus

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


def fees_billed_get(
    *,
    subscription_ids: Iterable[int],
    since: datetime,
    exclude_invoice_ids: Iterable[int] = (),
    final_only: bool = False,
) -> dict[int, list[BilledFee]]:
    """Per subscription, every base fee line (charges and credits for unused time) of its non-void
    invoices whose billing period ends after `since`, as it stands: after its discount lines and
    less what credit notes took back of it. Drafts count (they are finalized as they are, or
    re-made with what is known then) unless `final_only`.

    Amounts are as priced (tax-inclusive when the tenant's prices are): a line's own amount plus
    its discount lines'. A credit note credits a share of the line's net (before tax), so it takes
    back that share of the priced amount."""
    discounts = (
        InvoiceLine.objects.filter(discounts=OuterRef("pk")).values("discounts").annotate(t=Sum("amount")).values("t")
    )
    credited = (
        CreditNoteLine.objects.filter(invoice_line=OuterRef("pk"))
        .values("invoice_line")
        .annotate(t=Sum("amount"))
        .values("t")
    )
    lines = InvoiceLine.objects.filter(
        invoice__subscription_id__in=list(subscription_ids),
        kind__in=(LineKind.BASE_FEE, LineKind.BASE_FEE_CREDIT),
        plan_version__isnull=False,
        billing_period_end__gt=since,
    ).exclude(invoice__status=InvoiceStatus.VOID)
    if final_only:
        lines = lines.exclude(invoice__status=InvoiceStatus.DRAFT)
    if exclude_invoice_ids := list(exclude_invoice_ids):
        lines = lines.exclude(invoice_id__in=exclude_invoice_ids)
    rows = lines.annotate(
        off=Coalesce(Subquery(discounts), Value(ZERO)), credited=Coalesce(Subquery(credited), Value(ZERO))
    ).values_list(
        "invoice__subscription_id",
        "plan_version_id",
        "billing_period_start",
        "period_start",
        "period_end",
        "amount",
        "net_amount",
        "off",
        "credited",
        "invoice__bill_point",
    )
    out: dict[int, list[BilledFee]] = defaultdict(list)
    for sid, version_id, period_start, start, end, amount, net, off, credited_net, point in rows:
        priced = Fraction(amount + off)
        if credited_net and net:
            priced -= priced * Fraction(credited_net) / Fraction(net)
        out[sid].append(BilledFee(version_id, period_start, (start, end), priced, point))
    return out
