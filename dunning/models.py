"""Dunning: what happens to an invoice whose collection failed (or that is overdue), day by day
after the first failure, and the organization's resulting state, read by the seller's product
through the entitlement endpoint."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from dunning.policy import DEFAULT_EMAIL_DAYS, DEFAULT_RETRY_DAYS


class FinalAction(models.TextChoices):
    CANCEL = "cancel_at_period_end", "Cancel the subscription at the end of its period"
    LEAVE_PAST_DUE = "leave_past_due", "Leave the subscription past due"
    UNCOLLECTIBLE = "mark_uncollectible", "Mark the invoice uncollectible"


def _retry_days() -> list[int]:
    return list(DEFAULT_RETRY_DAYS)


def _email_days() -> list[int]:
    return list(DEFAULT_EMAIL_DAYS)


DAY = [MinValueValidator(0), MaxValueValidator(365)]


class DunningPolicy(models.Model):
    """The tenant's policy (no plan, no organization: at most one row), or an override for one
    plan or one organization (an organization's wins over its plan's). No row at all means the
    built-in defaults (dunning.policy.DEFAULT)."""

    plan = models.OneToOneField(
        "billing.Plan", null=True, blank=True, on_delete=models.CASCADE, related_name="dunning_policy"
    )
    organization = models.OneToOneField(
        "billing.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="dunning_policy"
    )
    retry_days = models.JSONField(default=_retry_days, help_text="Days after the first failure to charge again")
    retry_hard_declines = models.BooleanField(default=False)
    retry_on_method_change = models.BooleanField(default=True, help_text="Charge a new default method at once")
    plan_changes_blocked_day = models.PositiveSmallIntegerField(default=10, validators=DAY)
    suspend_day = models.PositiveSmallIntegerField(default=14, validators=DAY)
    final_day = models.PositiveSmallIntegerField(default=30, validators=DAY)
    final_action = models.CharField(max_length=24, choices=FinalAction.choices, default=FinalAction.CANCEL)
    email_days = models.JSONField(default=_email_days, help_text="Days after the first failure to remind")
    pre_due_reminder_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=DAY,
        help_text="Remind customers who pay by hand this many days before the due date (empty: no reminder)",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "dunning policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(plan__isnull=True) | models.Q(organization__isnull=True),
                name="dunning_policy_one_scope",
            ),
            models.UniqueConstraint(
                fields=["final_day"],
                condition=models.Q(plan__isnull=True, organization__isnull=True),
                name="dunning_policy_one_default",
            ),
            models.CheckConstraint(
                condition=models.Q(plan_changes_blocked_day__lte=models.F("suspend_day"))
                & models.Q(suspend_day__lte=models.F("final_day")),
                name="dunning_policy_days_ordered",
            ),
        ]

    def __str__(self) -> str:
        if self.organization_id:
            return f"Dunning policy of organization {self.organization_id}"
        if self.plan_id:
            return f"Dunning policy of plan {self.plan_id}"
        return "Dunning policy"


class DunningStatus(models.TextChoices):
    ACTIVE = "active"
    PAST_DUE = "past_due"
    SUSPENDED = "suspended"
    FINAL = "final"


class DunningAccount(models.Model):
    """An organization's dunning state: the worst stage of its open cases (active when none),
    with what the seller's product should block and since when. No row = active."""

    organization = models.OneToOneField("billing.Organization", on_delete=models.CASCADE, related_name="dunning")
    status = models.CharField(max_length=12, choices=DunningStatus.choices, default=DunningStatus.ACTIVE)
    blocked_features = models.JSONField(default=list, blank=True)
    since = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    # Staff paused dunning for this organization: the run takes no step for it (no retry, no
    # email, no stage) until it is resumed.
    paused = models.BooleanField(default=False)
    # Staff suspended the organization by hand (dunning.services.staff.organization_suspend): it is
    # at least suspended whatever its cases say, until staff reactivate it.
    suspended_by_staff = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Dunning of {self.organization_id}: {self.status}"


class CaseStage(models.TextChoices):
    PAST_DUE = "past_due"
    RESTRICTED = "restricted"  # plan changes blocked
    SUSPENDED = "suspended"
    FINAL = "final"


class CaseResolution(models.TextChoices):
    PAID = "paid"
    CREDITED = "credited"
    VOIDED = "voided"
    WRITTEN_OFF = "written_off"


class DunningCase(models.Model):
    """One overdue invoice in dunning; its days count from `started_at` (the first failure, or
    the due date of an invoice paid by hand). Closed once the invoice is settled."""

    invoice = models.OneToOneField("invoicing.Invoice", on_delete=models.PROTECT, related_name="dunning_case")
    organization = models.ForeignKey("billing.Organization", on_delete=models.PROTECT, related_name="dunning_cases")
    started_at = models.DateTimeField()
    stage = models.CharField(max_length=12, choices=CaseStage.choices, default=CaseStage.PAST_DUE)
    closed_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=12, choices=CaseResolution.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [models.Index(fields=["organization"], condition=models.Q(closed_at=None), name="dunning_open")]

    def __str__(self) -> str:
        return f"Dunning of invoice {self.invoice_id} ({self.stage})"


class DunningStep(models.Model):
    """A step taken for an invoice (an email of a day, a retry, a stage, the final action),
    written in the transaction of its effect: the unique (invoice, step) makes every step happen
    once however often, or however concurrently, the run is repeated."""

    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.PROTECT, related_name="dunning_steps")
    organization = models.ForeignKey("billing.Organization", on_delete=models.PROTECT, related_name="dunning_steps")
    step = models.CharField(max_length=80)
    at = models.DateTimeField()
    payment = models.ForeignKey("payments.Payment", null=True, blank=True, on_delete=models.PROTECT)
    email_kind = models.CharField(max_length=20, blank=True)
    # Set once the email of this step left (the outbox is at least once: a rerun sends nothing).
    emailed_at = models.DateTimeField(null=True, blank=True)
    emailed_to = models.EmailField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["invoice", "step"], name="dunning_step_once")]

    def __str__(self) -> str:
        return f"{self.step} of invoice {self.invoice_id}"


class CardExpiryWarning(models.Model):
    """A warning that the organization's default card expires soon, sent once per card (and
    expiry: an updated card is a new one) and threshold: the unique constraint, the row written
    with its outbox message in one transaction, so a rerun or a concurrent run sends nothing
    twice. `emailed_at` as on DunningStep (the outbox is at least once)."""

    organization = models.ForeignKey(
        "billing.Organization", on_delete=models.PROTECT, related_name="card_expiry_warnings"
    )
    payment_method_id = models.CharField(max_length=255)
    label = models.CharField(max_length=100, blank=True)  # "visa •••• 4242"
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    days = models.PositiveSmallIntegerField()  # the threshold: 30 or 7 days ahead
    at = models.DateTimeField()
    emailed_at = models.DateTimeField(null=True, blank=True)
    emailed_to = models.EmailField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "payment_method_id", "exp_year", "exp_month", "days"],
                name="dunning_card_expiry_warning_once",
            )
        ]

    def __str__(self) -> str:
        return f"card expiry warning ({self.days} days) of organization {self.organization_id}"
