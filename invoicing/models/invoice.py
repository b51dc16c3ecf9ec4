from __future__ import annotations

from django.conf import settings
from django.db import models

from core.money import money_column, round_money
from tenants.validators import validate_currency

# Rounded amounts (at most 3 decimals: KWD) with room to spare; unit prices keep 12 decimals.
AMOUNT = {"max_digits": 24, "decimal_places": 4}
UNIT = {"max_digits": 32, "decimal_places": 12}


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open (finalized, awaiting payment)"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


FINAL_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE)


class Invoice(models.Model):
    """What a subscription owes at one bill point (billing.schedule). Draft until finalized, then
    immutable: its number, lines, totals and the seller's and customer's details as they were."""

    organization = models.ForeignKey("billing.Organization", on_delete=models.PROTECT, related_name="invoices")
    subscription = models.ForeignKey(
        "billing.Subscription", on_delete=models.PROTECT, null=True, blank=True, related_name="invoices"
    )
    bill_point = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    number = models.CharField(max_length=40, unique=True, null=True, blank=True)
    currency = models.CharField(max_length=3, validators=[validate_currency])
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    subtotal = models.DecimalField(**AMOUNT, default=0)  # net of tax, after discounts
    tax_total = models.DecimalField(**AMOUNT, default=0)
    total = models.DecimalField(**AMOUNT, default=0)  # with tax
    credits_applied = models.DecimalField(**AMOUNT, default=0)
    amount_due = models.DecimalField(**AMOUNT, default=0)
    amount_paid = models.DecimalField(**AMOUNT, default=0)
    tax_problem = models.TextField(blank=True, help_text="Why tax could not be computed; holds finalization")
    grace_until = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    # When it was written off (marked uncollectible); kept if it is paid or voided afterwards, so
    # receivables and the month's write-offs can be stated as of any day.
    uncollectible_at = models.DateTimeField(null=True, blank=True)
    seller = models.JSONField(default=dict, blank=True)
    customer = models.JSONField(default=dict, blank=True)
    # The ISO 11649 creditor reference a bank transfer quotes (invoicing.remittance), set with the
    # number at finalization.
    payment_reference = models.CharField(max_length=25, unique=True, null=True, blank=True)
    pdf = models.FileField(upload_to="invoices/", blank=True)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The invariant: a subscription's bill point is invoiced at most once.
            models.UniqueConstraint(
                fields=["subscription", "bill_point"],
                condition=models.Q(subscription__isnull=False),
                name="invoicing_invoice_once_per_bill_point",
            ),
            models.CheckConstraint(
                condition=models.Q(status="draft", number__isnull=True)
                | ~models.Q(status="draft") & models.Q(number__isnull=False),
                name="invoicing_invoice_number_iff_final",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "grace_until"], name="invoicing_draft_due"),
            models.Index(fields=["organization", "-created_at"], name="invoicing_org_recent"),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft {self.pk}"

    # The columns are an amount and a currency each; domain code reads them as Money.
    subtotal_money = money_column("subtotal")

    tax_total_money = money_column("tax_total")

    total_money = money_column("total")

    credits_applied_money = money_column("credits_applied")

    amount_due_money = money_column("amount_due")

    amount_paid_money = money_column("amount_paid")


class InvoiceLine(models.Model):
    """One line: a billing.bill line with its tax. A discount line points at the line it reduces
    (`discounts`); a correction line at the usage line whose late events it bills (`corrects`).
    Tax is computed per line on the line net of its discounts and recorded on the line itself;
    its discount lines carry the rate and no tax of their own."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=20)
    description = models.CharField(max_length=300)
    currency = models.CharField(max_length=3)
    quantity = models.DecimalField(max_digits=38, decimal_places=12, null=True, blank=True)
    unit_amount = models.DecimalField(**UNIT, null=True, blank=True)
    amount = models.DecimalField(**AMOUNT)  # as priced (tax-inclusive when the tenant's prices are)
    net_amount = models.DecimalField(**AMOUNT, default=0)  # this line and its discounts, before tax
    tax_amount = models.DecimalField(**AMOUNT, default=0)
    tax_rate = models.DecimalField(max_digits=9, decimal_places=4, null=True, blank=True)  # percent, all components
    tax_jurisdiction = models.CharField(max_length=20, blank=True)
    tax_reason = models.TextField(blank=True)
    taxes = models.JSONField(default=list, blank=True)  # [{name, jurisdiction, rate, taxable_amount, amount, reason}]
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    billing_period_start = models.DateTimeField()
    billing_period_end = models.DateTimeField()
    plan_version = models.ForeignKey("billing.PlanVersion", on_delete=models.PROTECT, null=True, blank=True)
    charge = models.ForeignKey("billing.PlanCharge", on_delete=models.PROTECT, null=True, blank=True)
    meter_code = models.CharField(max_length=100, blank=True)
    group = models.CharField(max_length=255, null=True, blank=True)
    breakdown = models.JSONField(default=list, blank=True)
    proration = models.JSONField(null=True, blank=True)
    coupon_redemption = models.ForeignKey("billing.CouponRedemption", on_delete=models.PROTECT, null=True, blank=True)
    discounts = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="discount_lines"
    )
    corrects = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrections")

    class Meta:
        ordering = ["invoice_id", "position"]
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="invoicing_line_position")]

    def __str__(self) -> str:
        # the amount in its currency's decimals, not the column's four
        return f"{self.description}: {round_money(self.amount, self.currency)} {self.currency}"

    amount_money = money_column("amount")

    net_amount_money = money_column("net_amount")

    tax_amount_money = money_column("tax_amount")


class CreditNote(models.Model):
    """The only way to change what a finalized invoice asked for. Against an open invoice it lowers
    the amount due; beyond that (or on a paid invoice) it becomes credit on the balance."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(max_length=40, unique=True)
    reason = models.CharField(max_length=300)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(**AMOUNT)
    tax_total = models.DecimalField(**AMOUNT)
    total = models.DecimalField(**AMOUNT)
    applied_to_invoice = models.DecimalField(**AMOUNT, default=0)
    credited_to_balance = models.DecimalField(**AMOUNT, default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.number

    subtotal_money = money_column("subtotal")

    tax_total_money = money_column("tax_total")

    total_money = money_column("total")

    applied_to_invoice_money = money_column("applied_to_invoice")

    credited_to_balance_money = money_column("credited_to_balance")


class CreditNoteLine(models.Model):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")
    invoice_line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="credit_note_lines")
    description = models.CharField(max_length=300)
    amount = models.DecimalField(**AMOUNT)  # net credited, positive
    tax_amount = models.DecimalField(**AMOUNT)

    def __str__(self) -> str:
        return f"{self.description}: {round_money(self.amount, self.credit_note.currency)}"
