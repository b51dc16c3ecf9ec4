"""The tenant's dunning policy (and its plan and organization overrides) in the admin, and the
cases per stage, read-only (the staff dunning view with its figures and actions comes later)."""

from __future__ import annotations

from django.contrib import admin

from dunning.models import DunningCase, DunningPolicy


@admin.register(DunningPolicy)
class DunningPolicyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    list_display = ("__str__", "retry_days", "plan_changes_blocked_day", "suspend_day", "final_day", "final_action")
    raw_id_fields = ("plan", "organization")


@admin.register(DunningCase)
class DunningCaseAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # generic only in the stubs
    list_display = ("invoice", "organization", "stage", "started_at", "closed_at", "resolution")
    list_filter = ("stage", "resolution")
    list_select_related = ("invoice", "organization")
    search_fields = ("invoice__number", "organization__external_id")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
