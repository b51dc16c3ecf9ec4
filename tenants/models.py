"""Tenants (seller workspaces) and their domains, in the public schema."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

from tenants.validators import validate_currency, validate_timezone

HEX_COLOR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Enter a colour as #rrggbb.")


class Tenant(TenantMixin):
    """A seller: one company billing its customers here, with its own PostgreSQL schema."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=50, unique=True)
    default_currency = models.CharField(max_length=3, default="USD", validators=[validate_currency])
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    # Branding, used by the portal and (later) invoice PDFs.
    legal_name = models.CharField(max_length=200, blank=True)
    brand_logo = models.FileField(upload_to="branding/", blank=True)
    brand_primary_color = models.CharField(max_length=7, default="#1f4b99", validators=[HEX_COLOR])
    brand_accent_color = models.CharField(max_length=7, default="#f2a900", validators=[HEX_COLOR])
    legal_text = models.TextField(blank=True)
    support_email = models.EmailField(blank=True)
    # Usage events may be up to this many days old when they arrive (and 5 minutes ahead).
    event_window_days = models.PositiveSmallIntegerField(
        default=35, validators=[MinValueValidator(1), MaxValueValidator(366)]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Provisioning is explicit (tenants.services.tenant_provision), never a side effect of save().
    auto_create_schema = False
    auto_drop_schema = False

    def __str__(self) -> str:
        return self.name


class Domain(DomainMixin):
    pass
