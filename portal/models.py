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


class AlertMetric(models.TextChoices):
    USAGE = "usage", "Usage of a meter"
    SPEND = "spend", "Spend"


class UsageAlert(models.Model):
    """A customer's threshold (issue 13 flow 4) on a meter's usage or on spend this period: an
    absolute `threshold`, or `percent` of a `budget`. Evaluated from the drain path
    (portal.alerts); fires at most once per period (UsageAlertFiring)."""

    organization = models.ForeignKey("billing.Organization", on_delete=models.CASCADE, related_name="usage_alerts")
    metric = models.CharField(max_length=8, choices=AlertMetric.choices)
    meter = models.ForeignKey("metering.Meter", null=True, blank=True, on_delete=models.CASCADE)
    threshold = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    budget = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    percent = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # A usage alert names its meter; spend is the whole bill, no meter.
            models.CheckConstraint(
                condition=models.Q(metric="usage", meter__isnull=False) | models.Q(metric="spend", meter__isnull=True),
                name="portal_usagealert_meter",
            ),
            # Either an absolute threshold, or a percent of a budget.
            models.CheckConstraint(
                condition=models.Q(threshold__gt=0, budget__isnull=True, percent__isnull=True)
                | models.Q(threshold__isnull=True, budget__gt=0, percent__gt=0),
                name="portal_usagealert_threshold",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.meter.code if self.meter else 'spend'} ≥ {self.threshold_value()}"

    def threshold_value(self):
        if self.threshold is not None:
            return self.threshold
        return self.budget * self.percent / 100


class UsageAlertFiring(models.Model):
    """An alert crossed in one period. The unique constraint is what makes it fire once per
    period: the evaluation that inserts the row sends the webhook and queues the email."""

    alert = models.ForeignKey(UsageAlert, on_delete=models.CASCADE, related_name="firings")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    threshold = models.DecimalField(max_digits=24, decimal_places=6)
    value = models.DecimalField(max_digits=38, decimal_places=10)  # usage or spend when seen
    fired_at = models.DateTimeField()
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["alert", "period_start"], name="portal_usagealertfiring_once")]

    def __str__(self) -> str:
        return f"alert {self.alert_id} fired {self.fired_at:%Y-%m-%d %H:%M}"
