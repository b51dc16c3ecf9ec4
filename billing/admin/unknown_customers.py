"""Admin: usage from customer ids no organization has (issue 9: such events are kept, since the
organization may come later, and shown here). Read only; creating the organization makes a
customer disappear from the list."""

from django.contrib import admin

from billing.selectors.unknown_customers import unknown_customers_list
from metering.models import UnknownCustomerUsage


@admin.register(UnknownCustomerUsage)
class UnknownCustomerUsageAdmin(admin.ModelAdmin):
    list_display = ["customer", "event_count", "first_seen", "last_seen"]
    search_fields = ["customer"]
    date_hierarchy = "last_seen"

    def get_queryset(self, request):
        return unknown_customers_list(queryset=super().get_queryset(request))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
