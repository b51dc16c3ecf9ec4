from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from tenants.validators import validate_country, validate_currency, validate_timezone

EXTERNAL_ID = RegexValidator(r"^[A-Za-z0-9._:@-]{1,255}$", "Use 1-255 letters, digits or . _ : @ -.")
COUNTRY = RegexValidator(r"^[A-Z]{2}$", "Use an ISO 3166-1 alpha-2 country code, e.g. DE.")


class OrganizationStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    SUSPENDED = "suspended", "Suspended"
    CLOSED = "closed", "Closed"


class Organization(models.Model):
    """A B2B customer of the tenant: the billed account, known by the seller's own external_id
    (the id its usage events carry)."""

    external_id = models.CharField(max_length=255, unique=True, validators=[EXTERNAL_ID])
    name = models.CharField(max_length=200)
    billing_email = models.EmailField(blank=True)
    currency = models.CharField(max_length=3, validators=[validate_currency])
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    country = models.CharField(max_length=2, blank=True, validators=[COUNTRY])
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True, help_text="State, province or county")
    postal_code = models.CharField(max_length=20, blank=True)
    tax_id = models.CharField(max_length=50, blank=True)
    tax_exempt = models.BooleanField(default=False)
    tax_exemption_reference = models.CharField(max_length=200, blank=True, help_text="Certificate or legal basis")
    status = models.CharField(max_length=16, choices=OrganizationStatus.choices, default=OrganizationStatus.ACTIVE)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"

    def clean(self) -> None:
        # The field's validator checks the shape; which codes are countries is checked here (not
        # as a second field validator, which would only repeat the shape error, e.g. for "de").
        if self.country and COUNTRY.regex.fullmatch(self.country):
            try:
                validate_country(self.country)
            except ValidationError as exc:
                raise ValidationError({"country": exc.error_list}) from None
