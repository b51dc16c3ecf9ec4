"""Usage limits (issue 13 flow 7): what the seller allows per plan, the lower caps a customer
sets for itself, and the limits an organization reached in a period.

They live in billing, below dunning, because the entitlement endpoint (dunning.selectors) reads
which meters are blocked; the portal (above) evaluates them from the drain path."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

LIMIT_DIGITS = {"max_digits": 24, "decimal_places": 6}


class PlanUsageLimit(models.Model):
    """The most of a meter's usage a plan allows per billing period: hard (the organization's
    entitlement for the meter is blocked once it is reached, until the next period)."""

    plan = models.ForeignKey("billing.Plan", on_delete=models.CASCADE, related_name="usage_limits")
    meter = models.ForeignKey("metering.Meter", on_delete=models.PROTECT, related_name="plan_limits")
    limit = models.DecimalField(**LIMIT_DIGITS, validators=[MinValueValidator(0)])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plan", "meter"], name="billing_planusagelimit_unique"),
            models.CheckConstraint(condition=models.Q(limit__gte=0), name="billing_planusagelimit_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code}: {self.meter.code} ≤ {self.limit}"


class UsageCap(models.Model):
    """A customer's own cap on a meter per period, at most the plan's limit: soft (notify only) or
    hard (block the meter like the plan's limit)."""

    organization = models.ForeignKey("billing.Organization", on_delete=models.CASCADE, related_name="usage_caps")
    meter = models.ForeignKey("metering.Meter", on_delete=models.CASCADE, related_name="usage_caps")
    limit = models.DecimalField(**LIMIT_DIGITS, validators=[MinValueValidator(0)])
    hard = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "meter"], name="billing_usagecap_unique"),
            models.CheckConstraint(condition=models.Q(limit__gte=0), name="billing_usagecap_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.meter.code} ≤ {self.limit} ({'hard' if self.hard else 'soft'})"


class LimitSource(models.TextChoices):
    PLAN = "plan", "Plan limit"
    CAP = "cap", "Customer cap"


class UsageLimitReached(models.Model):
    """An organization's usage of a meter reached a limit in one period. At most one soft and one
    hard row per (organization, meter, period): the evaluation that inserts it is the one that
    sends the webhook. A hard row blocks the meter until `period_end`."""

    organization = models.ForeignKey("billing.Organization", on_delete=models.CASCADE, related_name="limits_reached")
    meter = models.ForeignKey("metering.Meter", on_delete=models.CASCADE, related_name="limits_reached")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    hard = models.BooleanField()
    source = models.CharField(max_length=8, choices=LimitSource.choices)
    limit = models.DecimalField(**LIMIT_DIGITS)
    value = models.DecimalField(max_digits=38, decimal_places=10)  # the usage when it was seen
    emailed_at = models.DateTimeField(null=True, blank=True)
    reached_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "meter", "period_start", "hard"], name="billing_usagelimitreached_once"
            )
        ]
        indexes = [models.Index(fields=["organization", "period_end"], name="billing_ulr_org_end")]

    def __str__(self) -> str:
        return f"{self.meter.code} reached {self.limit} from {self.period_start:%Y-%m-%d}"
