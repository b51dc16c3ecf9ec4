from django.contrib import admin

from billing.models import Membership, Organization


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["external_id", "name", "status", "currency", "country", "created_at"]
    list_filter = ["status", "currency", "country"]
    search_fields = ["external_id", "name", "billing_email", "tax_id"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [MembershipInline]
