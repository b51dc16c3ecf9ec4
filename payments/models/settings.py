from __future__ import annotations

from django.db import models

from core import crypto


class GatewaySettings(models.Model):
    """The tenant's own Stripe account (one row per tenant schema). Secrets are stored encrypted
    (core.crypto, keys from the environment, rotatable) and never shown again: the admin form
    only replaces them. Where the API lives is configuration (`STRIPE_API_BASE`), not a row."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    stripe_publishable_key = models.CharField(max_length=255, blank=True)  # public by design
    stripe_secret_key_encrypted = models.TextField(blank=True)
    stripe_webhook_secret_encrypted = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "gateway settings"
        constraints = [models.CheckConstraint(condition=models.Q(singleton=True), name="payments_settings_singleton")]

    def __str__(self) -> str:
        return "Gateway settings"

    # Write-only accessors: code that needs a secret decrypts it where it uses it.
    def stripe_secret_key(self) -> str:
        return crypto.decrypt(self.stripe_secret_key_encrypted) if self.stripe_secret_key_encrypted else ""

    def stripe_webhook_secret(self) -> str:
        return crypto.decrypt(self.stripe_webhook_secret_encrypted) if self.stripe_webhook_secret_encrypted else ""

    def stripe_secret_key_set(self, value: str) -> None:
        self.stripe_secret_key_encrypted = crypto.encrypt(value) if value else ""

    def stripe_webhook_secret_set(self, value: str) -> None:
        self.stripe_webhook_secret_encrypted = crypto.encrypt(value) if value else ""

    @property
    def stripe_ready(self) -> bool:
        return bool(self.stripe_secret_key_encrypted)
