"""Bank transfers: what staff recorded or a statement import matched, the statement lines as
imported (each once, by fingerprint), and the payment emails sent (each once)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.money import money_column
from invoicing.models.invoice import AMOUNT


class StatementImport(models.Model):
    """One uploaded bank statement file, with what importing it did."""

    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    lines_read = models.PositiveIntegerField(default=0)
    lines_new = models.PositiveIntegerField(default=0)  # the others were imported before
    lines_matched = models.PositiveIntegerField(default=0)
    lines_unmatched = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.created_at:%Y-%m-%d %H:%M})"


class LineOutcome(models.TextChoices):
    PAID = "paid", "Paid the invoice"
    PARTIAL = "partial", "Partial payment"
    OVERPAID = "overpaid", "Paid the invoice; the rest became credit"
    UNMATCHED = "unmatched", "Unmatched: needs a person"
    IGNORED = "ignored", "Ignored (outgoing, zero, or dismissed)"


MATCHED = (LineOutcome.PAID, LineOutcome.PARTIAL, LineOutcome.OVERPAID)


class StatementLine(models.Model):
    """A line of a bank statement, stored once: `fingerprint` (unique) is derived from its date,
    amount, currency, description, counterparty and its occurrence among identical lines of the
    same file, so importing the same file (or an overlapping one) again adds nothing."""

    statement_import = models.ForeignKey(StatementImport, on_delete=models.PROTECT, related_name="lines")
    fingerprint = models.CharField(max_length=64, unique=True)
    row_number = models.PositiveIntegerField()  # in the file, for people
    booked_on = models.DateField()
    amount = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3)
    description = models.TextField(blank=True)
    counterparty = models.CharField(max_length=300, blank=True)
    outcome = models.CharField(max_length=10, choices=LineOutcome.choices)
    reason = models.CharField(max_length=300, blank=True)  # why unmatched or ignored
    invoice = models.ForeignKey(
        "invoicing.Invoice", on_delete=models.PROTECT, null=True, blank=True, related_name="statement_lines"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-booked_on", "-id"]
        indexes = [models.Index(fields=["outcome", "booked_on"], name="payments_stmt_line_outcome")]

    def __str__(self) -> str:
        return f"{self.booked_on} {self.amount} {self.currency}"

    money = money_column("amount")


class BankTransfer(models.Model):
    """The bank side of a `bank_transfer` payment: when it arrived, what the payer wrote, and
    where it was recorded from (staff by hand, or a statement line: each line pays at most once)."""

    payment = models.OneToOneField("payments.Payment", on_delete=models.PROTECT, related_name="bank_transfer")
    received_on = models.DateField()
    reference = models.CharField(max_length=500, blank=True)
    counterparty = models.CharField(max_length=300, blank=True)
    note = models.TextField(blank=True)
    statement_line = models.OneToOneField(
        StatementLine, on_delete=models.PROTECT, null=True, blank=True, related_name="transfer"
    )
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_on", "-id"]

    def __str__(self) -> str:
        return f"Transfer {self.payment_id} on {self.received_on}"


class PaymentEmail(models.Model):
    """An email sent about a payment (its receipt, or the 3-D Secure request), recorded after the
    mail server took it: the outbox may run a message twice, the email goes once."""

    class Kind(models.TextChoices):
        RECEIPT = "receipt"
        ACTION_REQUIRED = "action_required"

    payment = models.ForeignKey("payments.Payment", on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    to = models.EmailField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["payment", "kind"], name="payments_email_once")]

    def __str__(self) -> str:
        return f"{self.kind} for payment {self.payment_id}"
