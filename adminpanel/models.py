from __future__ import annotations

from django.db import models


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
