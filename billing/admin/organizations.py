"""Organizations in the Django admin. Every write goes through the organization services, as the
API's do: adding (`organization_create`), editing (`organization_update`, whose rules also run in
the form so a refusal shows there: the currency is fixed once subscribed; the model checks the
fields, e.g. that a country code is an ISO 3166-1 country) and closing (`organization_close`, on
its own confirmation page: it ends the live subscriptions with their final bills). The status is
never edited by hand (dunning and closing set it), and organizations are closed, never deleted."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing.models import LIVE_STATUSES, Membership, Organization, OrganizationStatus
from billing.services.organization import (
    EDITABLE_FIELDS,
    organization_close,
    organization_create,
    organization_update,
    organization_update_check,
)
from core.errors import DomainError


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["external_id", *EDITABLE_FIELDS]

    def clean_metadata(self):
        # The model keeps an object (NOT NULL, default {}): an emptied box is no metadata, not a
        # NULL the database refuses; anything but an object is refused as the API refuses it.
        value = self.cleaned_data.get("metadata")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("metadata must be a JSON object.", code="invalid_metadata")
        return value

    def service_changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.changed_data if name in EDITABLE_FIELDS}

    def clean(self):
        data = super().clean()
        if self.instance.pk is not None and not self.errors:
            try:
                organization_update_check(organization=self.instance, changes=self.service_changes())
            except DomainError as exc:
                field = "currency" if exc.code == "currency_locked" else None
                self.add_error(field, forms.ValidationError(exc.message, code=exc.code))
        return data


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    form = OrganizationForm
    list_display = ["external_id", "name", "status", "currency", "country", "created_at"]
    list_filter = ["status", "currency", "country"]
    search_fields = ["external_id", "name", "billing_email", "tax_id"]
    inlines = [MembershipInline]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ["status", "created_at", "updated_at"]
        return ["external_id", "status", "close_link", "created_at", "updated_at"]

    def has_delete_permission(self, request, obj=None):
        return False  # invoices and the audit trail refer to it: it is closed instead

    @admin.display(description="Close")
    def close_link(self, obj: Organization):
        if obj.pk is None or obj.status == OrganizationStatus.CLOSED:
            return "-"
        url = reverse("admin:billing_organization_close", args=[obj.pk])
        return format_html('<a href="{}">Close this organization…</a>', url)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Not wrapped in the admin's request-wide transaction: the services commit their own
        # durable one (which cannot nest). The memberships inline is saved after it.
        return self._changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            organization_update(actor=request.user, organization=obj, **form.service_changes())
            return
        data = form.cleaned_data
        made = organization_create(
            actor=request.user,
            external_id=data["external_id"],
            **{name: data[name] for name in EDITABLE_FIELDS if name in data},
        )
        obj.pk, obj.created_at, obj.updated_at = made.pk, made.created_at, made.updated_at
        obj._state.adding = False

    def get_urls(self):
        close = self.admin_site.admin_view(self.close_view)
        return [
            path("<path:object_id>/close/", close, name="billing_organization_close"),
            *super().get_urls(),
        ]

    def close_view(self, request, object_id):
        """A confirmation page naming what closing does; it closes only on the confirming POST."""
        organization = self.get_object(request, unquote(object_id))
        if organization is None:
            raise Http404
        if not self.has_change_permission(request, organization):
            raise PermissionDenied
        change_url = reverse("admin:billing_organization_change", args=[organization.pk])
        if organization.status == OrganizationStatus.CLOSED:
            self.message_user(request, f"{organization} is already closed.", messages.WARNING)
            return HttpResponseRedirect(change_url)
        if request.method == "POST":
            organization_close(actor=request.user, organization=organization)
            self.message_user(request, f"{organization} is closed; its subscriptions have ended.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        subscriptions = organization.subscriptions.filter(status__in=LIVE_STATUSES).select_related("plan_version__plan")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": organization,
            "title": f"Close {organization}",
            "subscriptions": list(subscriptions),
            "change_url": change_url,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "billing/admin/organization_close.html", context)
