from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models

from billing.models.plan import PRICE_DIGITS
from core.money import Money
from tenants.validators import validate_currency


class DiscountType(models.TextChoices):
    PERCENTAGE = "percentage", "Percentage"
    FIXED = "fixed", "Fixed amount"


class CouponDuration(models.TextChoices):
    ONCE = "once", "Once (the billing period it is redeemed in)"
    REPEATING = "repeating", "Repeating (a number of billing periods)"
    FOREVER = "forever", "Forever"


class CouponTarget(models.TextChoices):
    BASE_FEE = "base_fee", "The base fee"
    CHARGES = "charges", "Usage charges (all, or the named meters)"
    INVOICE = "invoice", "Every line of the invoice"


class Coupon(models.Model):
    """A discount a seller hands out. Applied before tax, line by line (billing.bill)."""

    code = models.CharField(max_length=100, unique=True, validators=[RegexValidator(r"^[A-Za-z0-9_.-]+$")])
    name = models.CharField(max_length=200)
    discount_type = models.CharField(max_length=16, choices=DiscountType.choices)
    percent_off = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    amount_off = models.DecimalField(**PRICE_DIGITS, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, validators=[validate_currency])
    duration = models.CharField(max_length=16, choices=CouponDuration.choices)
    duration_periods = models.PositiveIntegerField(null=True, blank=True)
    applies_to = models.CharField(max_length=16, choices=CouponTarget.choices, default=CouponTarget.INVOICE)
    meter_codes = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    redeem_by = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(
                        discount_type="percentage",
                        percent_off__gt=0,
                        percent_off__lte=100,
                        amount_off__isnull=True,
                    )
                    | models.Q(discount_type="fixed", amount_off__gt=0, percent_off__isnull=True)
                    & ~models.Q(currency="")
                ),
                name="billing_coupon_discount_shape",
            ),
            models.CheckConstraint(
                condition=models.Q(duration="repeating", duration_periods__gte=1)
                | ~models.Q(duration="repeating") & models.Q(duration_periods__isnull=True),
                name="billing_coupon_duration_shape",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def amount_off_money(self) -> Money | None:
        """What a fixed coupon gives per billing period; None for a percentage coupon."""
        return None if self.amount_off is None else Money(self.amount_off, self.currency)


class CouponRedemption(models.Model):
    """A coupon applied to one organization's subscription. It discounts the lines whose billing
    period starts in [covers_from, covers_until) (covers_until null: forever), fixed when the
    coupon is redeemed; `removed_at` stops it for lines billed afterwards."""

    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="redemptions")
    organization = models.ForeignKey("billing.Organization", on_delete=models.PROTECT, related_name="redemptions")
    subscription = models.ForeignKey("billing.Subscription", on_delete=models.PROTECT, related_name="redemptions")
    redeemed_at = models.DateTimeField()
    covers_from = models.DateTimeField()
    covers_until = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    redeemed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["redeemed_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["coupon", "organization"], name="billing_redemption_once_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.coupon.code} for {self.organization.external_id}"
