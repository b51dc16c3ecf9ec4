from django.contrib import admin

from metering.models import Meter
from metering.services.meter import meter_create, meter_update


@admin.register(Meter)
class MeterAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "event_type", "aggregation", "value_property", "allow_negative", "updated_at"]
    list_filter = ["aggregation", "allow_negative"]
    search_fields = ["code", "name", "event_type"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        # Through the services, so rules hold and the rollups are rebuilt.
        data = {field: form.cleaned_data[field] for field in form.changed_data}
        saved = (
            meter_update(actor=request.user, meter=obj, **data)
            if change
            else meter_create(actor=request.user, **form.cleaned_data)
        )
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at
