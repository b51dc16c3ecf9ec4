from __future__ import annotations

from django.conf import settings
from django.db import models

from billing.models.plan import PRICE_DIGITS
from core.money import money_column, round_money
from tenants.validators import validate_currency


class CreditKind(models.TextChoices):
    # Grants (positive amounts)
    PURCHASE = "purchase", "Purchased (prepaid) credit"
    PROMOTIONAL = "promotional", "Promotional grant"
    PRORATION = "proration", "Credit from a plan change or cancellation"
    CREDIT_NOTE = "credit_note", "Credit from a credit note"
    # Uses of a grant (negative amounts)
    APPLICATION = "application", "Applied to an invoice"
    VOID = "void", "Voided by staff"


GRANT_KINDS = (CreditKind.PURCHASE, CreditKind.PROMOTIONAL, CreditKind.PRORATION, CreditKind.CREDIT_NOTE)
USE_KINDS = (CreditKind.APPLICATION, CreditKind.VOID)


class CreditEntry(models.Model):
    """The organization's credit ledger: append-only. A grant adds credit (positive, optionally
    expiring); a use takes from exactly one grant (negative). A grant's remaining credit is its
    amount plus its uses; the balance is the remaining credit of unexpired grants. Nothing here
    is ever edited or deleted: a correction is another entry."""

    organization = models.ForeignKey("billing.Organization", on_delete=models.PROTECT, related_name="credit_entries")
    currency = models.CharField(max_length=3, validators=[validate_currency])
    kind = models.CharField(max_length=16, choices=CreditKind.choices)
    amount = models.DecimalField(**PRICE_DIGITS)
    grant = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="uses")
    expires_at = models.DateTimeField(null=True, blank=True)
    description = models.CharField(max_length=300, blank=True)
    reference = models.CharField(max_length=100, blank=True, help_text="e.g. the invoice it was applied to")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "credit entries"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=GRANT_KINDS, amount__gt=0, grant__isnull=True)
                | models.Q(kind__in=USE_KINDS, amount__lt=0, grant__isnull=False, expires_at__isnull=True),
                name="billing_credit_entry_shape",
            ),
        ]
        indexes = [models.Index(fields=["organization", "currency"])]

    def __str__(self) -> str:
        # the amount in its currency's decimals, not the column's ten (an unsaved grant of the
        # admin's add form has no currency yet)
        amount = round_money(self.amount, self.currency) if self.currency else self.amount
        return f"{self.kind} {amount} {self.currency} ({self.organization_id})"

    amount_money = money_column("amount")
