"""Usage limits per plan in the Django admin (issue 13 flow 7): one row per plan and meter, the
most usage a billing period allows (hard). The API's `PUT /api/v1/plans/<code>/limits` replaces
a plan's whole list. Validated by the model form (the unique constraint, a non-negative limit),
so a bad row is a form error, never a server error."""

from __future__ import annotations

from django.contrib import admin

from billing.models import PlanUsageLimit


@admin.register(PlanUsageLimit)
class PlanUsageLimitAdmin(admin.ModelAdmin):
    list_display = ("plan", "meter", "limit", "created_at")
    list_filter = ("plan",)
    ordering = ("plan__code", "meter__code")
    fields = ("plan", "meter", "limit")
