from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from tenants.validators import validate_currency

# Prices keep more precision than any currency's minor unit (unit prices such as 0.00002);
# rounding to the minor unit happens at named points when invoice lines are made.
PRICE_DIGITS = {"max_digits": 24, "decimal_places": 10}


class PlanInterval(models.TextChoices):
    MONTH = "month", "Monthly"
    QUARTER = "quarter", "Quarterly"
    YEAR = "year", "Yearly"


class BaseFeeTiming(models.TextChoices):
    ADVANCE = "advance", "In advance"
    ARREARS = "arrears", "In arrears"


class Plan(models.Model):
    """A priced offer. What it costs lives in its versions: editing makes a new version and
    subscriptions keep the version they were put on."""

    code = models.CharField(max_length=100, unique=True, validators=[RegexValidator(r"^[a-z0-9_.-]+$")])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    currency = models.CharField(max_length=3, validators=[validate_currency])
    interval = models.CharField(max_length=16, choices=PlanInterval.choices, default=PlanInterval.MONTH)
    is_active = models.BooleanField(default=True)
    # Offered to customers in the portal's plan page (issue 13 flow 5): off by default, so a
    # plan made for one negotiated contract is never shown to everyone.
    self_serve = models.BooleanField(
        default=False, help_text="Customers may switch to this plan themselves in the portal."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class PlanVersion(models.Model):
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    base_fee = models.DecimalField(**PRICE_DIGITS, default=Decimal("0"), validators=[MinValueValidator(0)])
    base_fee_timing = models.CharField(max_length=16, choices=BaseFeeTiming.choices, default=BaseFeeTiming.ADVANCE)
    trial_days = models.PositiveIntegerField(default=0)
    minimum_commitment = models.DecimalField(**PRICE_DIGITS, null=True, blank=True, validators=[MinValueValidator(0)])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plan", "version"], name="billing_planversion_unique"),
            models.CheckConstraint(condition=models.Q(base_fee__gte=0), name="billing_planversion_fee_nonneg"),
        ]
        ordering = ["plan_id", "-version"]

    def __str__(self) -> str:
        return f"{self.plan.code} v{self.version}"


class PlanCharge(models.Model):
    """A usage charge of a plan version: a meter and its price (the JSON document of
    billing.pricing, validated when the version is made). With `group_property` (one of the
    meter's group_by paths), each value of that dimension is priced on its own: by its entry in
    `group_prices`, else by `price`. Versions are immutable once made, charges with them."""

    plan_version = models.ForeignKey(PlanVersion, on_delete=models.CASCADE, related_name="charges")
    meter = models.ForeignKey("metering.Meter", on_delete=models.PROTECT, related_name="charges")
    name = models.CharField(max_length=200, blank=True, help_text="Shown on invoices; the meter's name if empty")
    price = models.JSONField()
    group_property = models.CharField(max_length=255, blank=True)
    group_prices = models.JSONField(default=dict, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["plan_version_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["plan_version", "meter"], name="billing_plancharge_one_per_meter"),
        ]

    def __str__(self) -> str:
        return f"{self.plan_version} · {self.name or self.meter_id}"
