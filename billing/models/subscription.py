from __future__ import annotations

from django.db import models


class SubscriptionStatus(models.TextChoices):
    PENDING = "pending", "Pending (starts at a later date)"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    SUSPENDED = "suspended", "Suspended"
    CANCELED = "canceled", "Canceled"
    ENDED = "ended", "Ended"


LIVE_STATUSES = (
    SubscriptionStatus.PENDING,
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
    SubscriptionStatus.SUSPENDED,
)


class BillingMode(models.TextChoices):
    CALENDAR = "calendar", "Calendar (periods start on the 1st)"
    ANNIVERSARY = "anniversary", "Anniversary (periods start on the start date)"


class Subscription(models.Model):
    """An organization on a plan. Periods are half-open [start, end) in UTC, computed in the
    organization's timezone from the immutable `billing_anchor` (billing.periods).

    Which version it is on over time lives in its phases (SubscriptionPhase); `plan_version` is
    the version in effect now, kept with the phases by the services. What has been billed is
    `billed_through`: the last bill point (billing.schedule) an invoice was made for; the billing
    run picks subscriptions whose `next_bill_at` has come. `ended_at` is set when the subscription
    ends or is scheduled to end (a cancellation at period end)."""

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
    billed_through = models.DateTimeField(null=True, blank=True)
    next_bill_at = models.DateTimeField(null=True, blank=True)
    # Why the last billing run could not bill it (a charge it cannot price, bad data): the run
    # goes on with the others and tries again each time; cleared once a run bills it.
    billing_problem = models.TextField(blank=True)
    billing_problem_at = models.DateTimeField(null=True, blank=True, help_text="When the problem was first seen")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(current_period_end__gt=models.F("current_period_start")),
                name="billing_subscription_period_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True) | models.Q(ended_at__gte=models.F("started_at")),
                name="billing_subscription_ends_after_start",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "current_period_end"]),
            models.Index(fields=["next_bill_at"], name="billing_sub_next_bill_at"),
        ]

    def __str__(self) -> str:
        return f"{self.organization.external_id} on {self.plan_version}"


class SubscriptionPhase(models.Model):
    """A stretch of a subscription on one plan version: [starts_at, ends_at), ends_at null while
    open. Phases of a subscription are contiguous and never overlap; a plan change closes the
    open phase and starts the next one (a downgrade at period end starts it in the future)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="phases")
    plan_version = models.ForeignKey("billing.PlanVersion", on_delete=models.PROTECT, related_name="phases")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subscription_id", "starts_at"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "starts_at"], name="billing_phase_unique_start"),
            models.CheckConstraint(
                condition=models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=models.F("starts_at")),
                name="billing_phase_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id}: {self.plan_version} from {self.starts_at:%Y-%m-%d %H:%M}"
