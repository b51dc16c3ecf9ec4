import copy

from django import forms
from django.contrib import admin

from core.errors import DomainError
from metering.models import Meter
from metering.services.meter import FIELDS, meter_create, meter_in_use, meter_update, meter_validate


class MeterAdminForm(forms.ModelForm):
    """Runs the services' rules while the form is validated, so a meter the services would refuse
    (a malformed filter, a used meter's aggregation changed) is a form error on the page, not a
    server error after the form was accepted."""

    class Meta:
        model = Meter
        fields = FIELDS

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        candidate = copy.copy(self.instance)
        for field in FIELDS:
            if field in cleaned:
                setattr(candidate, field, cleaned[field])
        try:
            if self.instance.pk and "aggregation" in self.changed_data and meter_in_use(self.instance):
                raise DomainError("The aggregation of a meter that a plan uses cannot change.", code="meter_in_use")
            meter_validate(candidate)
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None
        return cleaned


@admin.register(Meter)
class MeterAdmin(admin.ModelAdmin):
    form = MeterAdminForm
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
