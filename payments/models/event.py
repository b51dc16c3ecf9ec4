from __future__ import annotations

from django.db import models


class GatewayEventRecord(models.Model):
    """One verified inbound webhook, stored once per gateway event id (the constraint makes a
    redelivery a no-op), with what applying it did."""

    class Outcome(models.TextChoices):
        APPLIED = "applied"
        STALE = "stale"  # older than the state already recorded
        IGNORED = "ignored"  # a type we do not act on, or about an object we do not know
        RECEIVED = "received"  # verified and stored, not applied yet (payments.services.inbound)

    gateway = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    created = models.DateTimeField()  # the gateway's time of the event
    payload = models.JSONField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["gateway", "event_id"], name="payments_event_once")]

    def __str__(self) -> str:
        return f"{self.gateway} {self.type} {self.event_id}"
