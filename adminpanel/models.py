from __future__ import annotations

from django.conf import settings
from django.db import models


class StaffNote(models.Model):
    """A staff member's note on an organization (a call, a promise, a context for the next person
    who opens the page). Kept, never edited: the page shows them newest first with their author."""

    organization = models.ForeignKey("billing.Organization", on_delete=models.CASCADE, related_name="staff_notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    body = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Note {self.pk} on {self.organization_id}"


class RevenueSnapshot(models.Model):
    """The revenue figures of one day in one currency (adminpanel.analytics): what the analytics
    page reads, so the page costs the same for ten customers or ten thousand. Beat rewrites today
    and yesterday every hour; `analytics_backfill` fills a range. `figures` is the JSON of
    `revenue_figures`: amounts as decimal strings, rates as percent strings."""

    day = models.DateField()
    currency = models.CharField(max_length=3)
    figures = models.JSONField()
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "currency"], name="adminpanel_snapshot_day_currency")]
        ordering = ["day", "currency"]

    def __str__(self) -> str:
        return f"{self.day} {self.currency}"


class ComplianceCheck(models.Model):
    """The last result of one compliance check (adminpanel.compliance), kept so the dashboard
    shows when each check last passed rather than static text. Beat reruns every check daily in
    each tenant; staff rerun them on demand. `findings` lists what failed (at most
    compliance.FINDINGS_KEPT entries), `figures` what was counted."""

    key = models.CharField(max_length=64, unique=True)
    passed = models.BooleanField()
    ran_at = models.DateTimeField()
    last_passed_at = models.DateTimeField(null=True, blank=True)
    summary = models.CharField(max_length=300)
    findings = models.JSONField(default=list)
    figures = models.JSONField(default=dict)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key}: {'pass' if self.passed else 'fail'}"


class ApprovalThreshold(models.Model):
    """Above this amount in its currency, a staff credit grant or refund waits for a second staff
    user's approval (SOX-style four eyes). No row for a currency: one approver suffices, and the
    dashboard's `sox_second_approver` check fails for every currency an organization bills in."""

    currency = models.CharField(max_length=3, unique=True)
    amount = models.DecimalField(max_digits=18, decimal_places=4)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["currency"]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


class ApprovalKind(models.TextChoices):
    CREDIT = "credit", "Credit grant"
    REFUND = "refund", "Refund"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class PendingApproval(models.Model):
    """A staff credit grant or refund above the currency's ApprovalThreshold, as requested: done
    by the service only when a different staff user approves it. `params` are the form's values
    (JSON-safe), replayed through the same service at approval."""

    organization = models.ForeignKey("billing.Organization", on_delete=models.CASCADE, related_name="approvals")
    kind = models.CharField(max_length=16, choices=ApprovalKind.choices)
    amount = models.DecimalField(max_digits=18, decimal_places=4)
    currency = models.CharField(max_length=3)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals_requested"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="approvals_decided"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"Approval {self.pk}: {self.kind} {self.amount} {self.currency} ({self.status})"
