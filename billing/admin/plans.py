from django.contrib import admin

from billing.models import Plan, PlanCharge, PlanVersion


class PlanVersionInline(admin.TabularInline):
    model = PlanVersion
    extra = 0
    readonly_fields = ["created_at"]


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "currency", "interval", "is_active"]
    list_filter = ["interval", "currency", "is_active"]
    search_fields = ["code", "name"]
    inlines = [PlanVersionInline]


class PlanChargeInline(admin.TabularInline):
    model = PlanCharge
    extra = 0
    fields = ["position", "meter", "name", "price", "group_property", "group_prices"]
    readonly_fields = fields  # versions are immutable: a price change is a new version (API or service)

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PlanVersion)
class PlanVersionAdmin(admin.ModelAdmin):
    list_display = ["plan", "version", "base_fee", "base_fee_timing", "trial_days", "created_at"]
    list_filter = ["plan"]
    readonly_fields = [
        "plan",
        "version",
        "base_fee",
        "base_fee_timing",
        "trial_days",
        "minimum_commitment",
        "created_at",
    ]
    inlines = [PlanChargeInline]

    def has_add_permission(self, request):
        return False
