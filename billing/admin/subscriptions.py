from django.contrib import admin

from billing.models import Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["organization", "plan_version", "status", "current_period_start", "current_period_end"]
    list_filter = ["status"]
    search_fields = ["organization__external_id", "organization__name"]
    raw_id_fields = ["organization", "plan_version"]
