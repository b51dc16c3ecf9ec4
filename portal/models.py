from __future__ import annotations

from django.conf import settings
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


def _report_path(export: ReportExport, filename: str) -> str:
    # Under the tenant's own media directory (TenantFileSystemStorage), named by the export's
    # id; served only through the portal's download view, which checks the organization.
    return f"reports/{export.organization_id}/{export.pk}-{filename}"


class ReportExport(models.Model):
    """A large usage report built in the background (portal.report_exports): what was asked,
    how far the task got, and the files, which only the organization's members download."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        RUNNING = "running", "Building"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey("billing.Organization", on_delete=models.CASCADE, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    spec = models.JSONField()  # portal.reports.ReportSpec.as_json()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    done = models.PositiveIntegerField(default=0)  # statements read so far
    total = models.PositiveIntegerField(default=0)  # statements the report takes
    rows = models.PositiveIntegerField(default=0)
    csv = models.FileField(upload_to=_report_path, blank=True)
    xlsx = models.FileField(upload_to=_report_path, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"Report {self.pk} ({self.get_status_display()})"

    @property
    def report_spec(self):
        from portal.reports import ReportSpec

        return ReportSpec.from_json(self.spec)

    @property
    def percent(self) -> int:
        return 100 if self.status == self.Status.DONE else (self.done * 100 // self.total if self.total else 0)
