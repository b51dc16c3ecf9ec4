"""Revenue recognition (issue 14, item 4): what each finalized invoice line earns in which month.

It lives in invoicing because it reads only invoicing's lines and credit notes (and their
billing periods): payments and refunds never move recognized revenue, so the layer above is not
needed. Rows are append-only: a credit note or a void adds reversing rows, nothing is updated."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.money import money_column
from invoicing.models.invoice import AMOUNT, CreditNote, Invoice, InvoiceLine


class RevenuePattern(models.TextChoices):
    RATABLE = "ratable", "By day over the service period"
    USAGE = "usage", "On the days consumed"
    POINT = "point", "At a point in time"


class RevenueSource(models.TextChoices):
    INVOICE = "invoice", "Invoice finalized"
    CREDIT_NOTE = "credit_note", "Credit note"
    VOID = "void", "Invoice voided"


class RevenueEntry(models.Model):
    """One month of one line's revenue from one document (the grain is the UTC month: the waterfall,
    close and journal are monthly, and a row a day multiplied finalization's writes). `service_on`
    is the last day of the month the service was delivered in; `recognized_on` is the same unless
    that month was closed when the row was written, then the last day of the first open month (a
    closed month never changes). `booked_on` is the document's date (billed revenue; a usage month
    before it is unbilled)."""

    line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="revenue_entries")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="revenue_entries")
    credit_note = models.ForeignKey(
        CreditNote, on_delete=models.PROTECT, null=True, blank=True, related_name="revenue_entries"
    )
    source = models.CharField(max_length=16, choices=RevenueSource.choices)
    pattern = models.CharField(max_length=16, choices=RevenuePattern.choices)
    currency = models.CharField(max_length=3)
    service_on = models.DateField()
    recognized_on = models.DateField()
    booked_on = models.DateField()
    amount = models.DecimalField(**AMOUNT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["recognized_on", "id"]
        indexes = [
            models.Index(fields=["currency", "recognized_on"], name="invoicing_revenue_day"),
            models.Index(fields=["currency", "booked_on"], name="invoicing_revenue_booked"),
        ]

    def __str__(self) -> str:
        return f"{self.recognized_on}: {self.amount} {self.currency}"

    amount_money = money_column("amount")


class RevenueMonthClose(models.Model):
    """A closed month (its first day): no revenue row dated in it is written any more."""

    month = models.DateField(unique=True)
    closed_at = models.DateTimeField()
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["-month"]
        constraints = [models.CheckConstraint(condition=models.Q(month__day=1), name="invoicing_close_first_day")]

    def __str__(self) -> str:
        return self.month.strftime("%Y-%m")


class AccountMap(models.Model):
    """The tenant's ledger accounts for the journal export (adminpanel.journal): one row,
    `accounts` maps a role (receivable, deferred_revenue, ...) to {"code", "name"}; a role not in
    it uses the documented default (docs/revenue.md)."""

    accounts = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "Account map"


def _export_path(export: AccountingExport, filename: str) -> str:
    # Under the tenant's own media directory (TenantFileSystemStorage), named by the export's id;
    # served only through the staff download view, which checks the role and audits.
    return f"accounting-exports/{export.pk}-{filename}"


class AccountingExport(models.Model):
    """An accounting export of a period built in the background (adminpanel.exports, run by
    core.background_exports as the portal's usage reports are): what was asked, how far the task
    got, and its CSV and XLSX. Here rather than in adminpanel so that its permissions follow
    invoicing's (finance requests them; accounts.backends)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        RUNNING = "running", "Building"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=20)  # a key of adminpanel.exports.DATASETS
    spec = models.JSONField()  # {"from", "to", "currency", "tax_rate"}
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    csv = models.FileField(upload_to=_export_path, blank=True)
    xlsx = models.FileField(upload_to=_export_path, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.kind} export {self.pk} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        return 100 if self.status == self.Status.DONE else (self.done * 100 // self.total if self.total else 0)
