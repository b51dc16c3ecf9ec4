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
