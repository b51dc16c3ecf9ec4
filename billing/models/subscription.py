from __future__ import annotations

from django.db import models


class SubscriptionStatus(models.TextChoices):
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    SUSPENDED = "suspended", "Suspended"
    CANCELED = "canceled", "Canceled"
    ENDED = "ended", "Ended"


class BillingMode(models.TextChoices):
    CALENDAR = "calendar", "Calendar (periods start on the 1st)"
    ANNIVERSARY = "anniversary", "Anniversary (periods start on the start date)"


class Subscription(models.Model):
    """An organization on a plan version. Periods are half-open [start, end) in UTC, computed in
    the organization's timezone from the immutable `billing_anchor`."""

    organization = models.ForeignKey("billing.Organization", on_delete=models.PROTECT, related_name="subscriptions")
    plan_version = models.ForeignKey("billing.PlanVersion", on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE)
    billing_mode = models.CharField(max_length=16, choices=BillingMode.choices, default=BillingMode.CALENDAR)
    billing_anchor = models.DateTimeField()
    started_at = models.DateTimeField()
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    trial_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(current_period_end__gt=models.F("current_period_start")),
                name="billing_subscription_period_ordered",
            ),
        ]
        indexes = [models.Index(fields=["status", "current_period_end"])]

    def __str__(self) -> str:
        return f"{self.organization.external_id} on {self.plan_version}"
