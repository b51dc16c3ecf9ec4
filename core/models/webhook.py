from __future__ import annotations

from django.db import models


class WebhookEndpoint(models.Model):
    """A seller's URL that receives signed events (Standard Webhooks). The signing secret is stored
    encrypted (core.crypto) and shown once, when it is made; after a rotation the previous secret
    still signs until `previous_secret_expires_at`, so the receiver can switch without a gap."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=300, blank=True)
    # Event types delivered here; empty = every event type.
    event_types = models.JSONField(default=list, blank=True)
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Start of the current run of failed attempts (cleared by any success): 5 days of it disables.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    def accepts(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookDelivery(models.Model):
    """One delivery attempt of an outbox message to its endpoint (the attempt log). `message_id` is
    the outbox id, sent as `webhook-id` (`msg_<id>`); it is kept even after the outbox row is pruned."""

    message_id = models.BigIntegerField()
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=64)
    attempt = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)  # at most 1 KB of the response body
    error = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField(default=False)
    attempted_at = models.DateTimeField()

    class Meta:
        ordering = ["-attempted_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["endpoint", "-attempted_at"], name="core_delivery_endpoint_recent"),
            models.Index(fields=["message_id"], name="core_delivery_message"),
        ]

    def __str__(self) -> str:
        return f"msg_{self.message_id} → {self.endpoint_id} ({self.status_code or self.error})"
