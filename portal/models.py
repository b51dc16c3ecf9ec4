from __future__ import annotations

from django.db import models


class PortalSettings(models.Model):
    """What the seller lets its customers change themselves in the portal (one row per tenant
    schema; no row means the defaults)."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    # Customers may switch between automatic collection (charge the default method on
    # finalization) and manual (pay each invoice themselves, by card or transfer).
    customers_choose_collection = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "portal settings"
        constraints = [models.CheckConstraint(condition=models.Q(singleton=True), name="portal_settings_singleton")]

    def __str__(self) -> str:
        return "Portal settings"

    @classmethod
    def current(cls) -> PortalSettings:
        return cls.objects.first() or cls()
