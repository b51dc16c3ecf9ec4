"""Usage limits per plan in the Django admin (issue 13 flow 7): one row per plan and meter, the
most usage a billing period allows (hard). The API's `PUT /api/v1/plans/<code>/limits` replaces
a plan's whole list. Validated by the model form (the unique constraint, a non-negative limit),
so a bad row is a form error, never a server error. A raised or deleted row lifts the blocks it
recorded this period, as through the API (billing.services.limit)."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction

from billing.models import PlanUsageLimit
from billing.services.limit import plan_limits_raised_on_commit


@admin.register(PlanUsageLimit)
class PlanUsageLimitAdmin(admin.ModelAdmin):
    list_display = ("plan", "meter", "limit", "created_at")
    list_filter = ("plan",)
    ordering = ("plan__code", "meter__code")
    fields = ("plan", "meter", "limit")

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            before = {}
            if change:
                old = PlanUsageLimit.objects.filter(pk=obj.pk).values_list("plan_id", "meter_id", "limit").first()
                if old is not None and old[0] == obj.plan_id:
                    before = {old[1]: old[2]}
                elif old is not None:  # moved to another plan: gone from the first
                    plan_limits_raised_on_commit(plan_id=old[0], before={old[1]: old[2]}, after={})
            super().save_model(request, obj, form, change)
            plan_limits_raised_on_commit(plan_id=obj.plan_id, before=before, after={obj.meter_id: obj.limit})

    def delete_model(self, request, obj):
        with transaction.atomic():
            super().delete_model(request, obj)
            plan_limits_raised_on_commit(plan_id=obj.plan_id, before={obj.meter_id: obj.limit}, after={})

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            rows = list(queryset.values_list("plan_id", "meter_id", "limit"))
            super().delete_queryset(request, queryset)
            for plan_id, meter_id, limit in rows:
                plan_limits_raised_on_commit(plan_id=plan_id, before={meter_id: limit}, after={})
