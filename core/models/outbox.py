from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its first attempt
    CLAIMED = "claimed", "Claimed"  # a worker holds it until `claimed_until`
    FAILED = "failed", "Failed (retry scheduled)"  # the last attempt failed; next at `available_at`
    DONE = "done", "Done"
    DEAD = "dead", "Dead (gave up)"  # out of attempts, or refused for good; "retry now" revives it


# Statuses a worker may claim once `available_at` has come (a claimed one once its lease expired).
CLAIMABLE = (OutboxStatus.PENDING, OutboxStatus.FAILED)


class OutboxMessage(models.Model):
    """A side effect, written in the transaction of the change that causes it (core.services.outbox).
    `attempts` counts claims and fences them: a worker marks the outcome only while the row still
    carries the attempt number it claimed, so a worker whose lease ran out cannot overwrite a newer
    claim's result."""

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=64)
    # Unique per kind when set: one message per object (`invoice:<id>`), so adding it twice is a no-op.
    key = models.CharField(max_length=200, null=True, blank=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "key"], condition=models.Q(key__isnull=False), name="core_outbox_kind_key"
            ),
        ]
        indexes = [
            # The sweep's scan: only unfinished rows are indexed, so the table's done history costs nothing.
            models.Index(
                fields=["available_at"],
                condition=models.Q(status__in=["pending", "claimed", "failed"]),
                name="core_outbox_due",
            ),
            models.Index(fields=["status", "kind"], name="core_outbox_status_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"
