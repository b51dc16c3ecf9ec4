from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse

from portal.models import PortalSettings


@admin.register(PortalSettings)
class PortalSettingsAdmin(admin.ModelAdmin):
    """One row per tenant, as the invoicing settings: the list opens it (made with the defaults on
    first visit, which are what no row means), so there is no second row to add (the singleton
    constraint refused it with a server error; found by the PCI sweep) and none to delete."""

    list_display = ("__str__", "customers_choose_collection", "updated_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        settings, _ = PortalSettings.objects.get_or_create(singleton=True)
        return HttpResponseRedirect(reverse("admin:portal_portalsettings_change", args=[settings.pk]))
