from __future__ import annotations

from django.db import models

from core import crypto


class GatewaySettings(models.Model):
    """The tenant's own Stripe account and PayPal app (one row per tenant schema). Secrets are stored encrypted
    (core.crypto, keys from the environment, rotatable) and never shown again: the admin form
    only replaces them. Where the API lives is configuration (`STRIPE_API_BASE`), not a row."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    stripe_publishable_key = models.CharField(max_length=255, blank=True)  # public by design
    stripe_secret_key_encrypted = models.TextField(blank=True)
    stripe_webhook_secret_encrypted = models.TextField(blank=True)
    # The tenant's PayPal REST app: its client id (not a secret), its secret (encrypted), and the id
    # PayPal gave the webhook it registered (part of every signature PayPal sends to it).
    paypal_client_id = models.CharField(max_length=255, blank=True)
    paypal_client_secret_encrypted = models.TextField(blank=True)
    paypal_webhook_id = models.CharField(max_length=255, blank=True)
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

    def paypal_client_secret(self) -> str:
        return crypto.decrypt(self.paypal_client_secret_encrypted) if self.paypal_client_secret_encrypted else ""

    def paypal_client_secret_set(self, value: str) -> None:
        self.paypal_client_secret_encrypted = crypto.encrypt(value) if value else ""

    @property
    def paypal_ready(self) -> bool:
        return bool(self.paypal_client_id and self.paypal_client_secret_encrypted and self.paypal_webhook_id)

    @property
    def stripe_ready(self) -> bool:
        return bool(self.stripe_secret_key_encrypted)
