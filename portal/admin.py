from django.contrib import admin

from portal.models import PortalSettings


@admin.register(PortalSettings)
class PortalSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "customers_choose_collection", "updated_at")
