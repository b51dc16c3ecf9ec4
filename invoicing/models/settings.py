from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models

from invoicing.remittance import validate_bic, validate_iban, validate_routing_number

COUNTRY = RegexValidator(r"^[A-Z]{2}$", "Use an ISO 3166-1 alpha-2 country code, e.g. DE.")


class InvoicingSettings(models.Model):
    """The tenant's invoicing and tax settings: one row per tenant schema (`invoicing_settings_get`).
    Branding (logo, colours, legal text) lives on the public-schema Tenant, where the portal reads
    it too."""

    seller_name = models.CharField(
        max_length=200, blank=True, help_text="Legal name on invoices (default: the tenant's)"
    )
    seller_address = models.TextField(blank=True)
    seller_country = models.CharField(
        max_length=2, blank=True, validators=[COUNTRY], help_text="Origin country for tax; empty turns tax off"
    )
    seller_region = models.CharField(max_length=100, blank=True)
    seller_tax_id = models.CharField(max_length=50, blank=True)
    tax_registrations = ArrayField(
        models.CharField(max_length=16),
        default=list,
        blank=True,
        help_text='Where the seller collects tax: "DE", "EU-OSS", "GB", "AU", "CA", "CA-QC", "US-NY", …',
    )
    prices_include_tax = models.BooleanField(default=False)
    us_taxability = models.JSONField(default=dict, blank=True, help_text='Per state overrides, e.g. {"TX": false}')
    number_prefix = models.CharField(max_length=20, default="INV-", validators=[RegexValidator(r"^[A-Za-z0-9-/_.]*$")])
    credit_note_prefix = models.CharField(
        max_length=20, default="CN-", validators=[RegexValidator(r"^[A-Za-z0-9-/_.]*$")]
    )
    grace_hours = models.PositiveIntegerField(
        default=24, validators=[MaxValueValidator(24 * 31)], help_text="Drafts wait this long for late events"
    )
    payment_terms_days = models.PositiveIntegerField(default=14, validators=[MaxValueValidator(365)])
    # Where payers send a bank transfer, printed on every invoice (snapshotted into `seller`):
    # an IBAN (with its BIC) and/or a US account with its ABA routing number.
    bank_account_holder = models.CharField(max_length=140, blank=True)
    bank_name = models.CharField(max_length=140, blank=True)
    bank_iban = models.CharField(max_length=34, blank=True, validators=[validate_iban], verbose_name="IBAN")
    bank_bic = models.CharField(max_length=11, blank=True, validators=[validate_bic], verbose_name="BIC")
    bank_account_number = models.CharField(
        max_length=17,
        blank=True,
        validators=[RegexValidator(r"^[0-9]{4,17}$", "A US account number has 4 to 17 digits.")],
        verbose_name="US account number",
    )
    bank_routing_number = models.CharField(
        max_length=9, blank=True, validators=[validate_routing_number], verbose_name="US routing number (ABA)"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "invoicing settings"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="invoicing_settings_singleton")]

    def __str__(self) -> str:
        return "Invoicing settings"


class NumberSequence(models.Model):
    """A gap-free counter per document prefix: numbers are taken under a row lock inside the
    transaction that finalizes the document, so a rollback gives its number back."""

    prefix = models.CharField(max_length=20, unique=True)
    last_value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.prefix}{self.last_value}"
