from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin

from accounts.models import APIKey, StaffRole, User
from accounts.services.api_key import apikey_revoke


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "staff_role", "is_active", "date_joined", "last_login"]
    list_filter = ["staff_role", "is_active"]
    search_fields = ["email", "name"]
    fields = ["email", "name", "staff_role", "is_active", "date_joined", "last_login"]
    readonly_fields = ["date_joined", "last_login"]

    # Only owners may grant the owner role or change an owner's role.
    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.staff_role == StaffRole.OWNER and request.user.staff_role != StaffRole.OWNER:
            readonly.append("staff_role")
        return readonly

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "staff_role" and request.user.staff_role != StaffRole.OWNER:
            kwargs["choices"] = [("", "---------")] + [c for c in StaffRole.choices if c[0] != StaffRole.OWNER]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """Keys are created with `manage.py apikey_create` (the secret is printed once); here they
    are listed and revoked."""

    list_display = ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["name", "prefix", "scopes", "created_at", "created_by", "last_used_at", "revoked_at"]
    exclude = ["digest"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        for key in queryset:
            apikey_revoke(api_key=key, actor=request.user)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class LogEntryAdmin(AuditlogLogEntryAdmin):
    """django-auditlog's own admin, searching fields our User has: it searches
    `actor__first_name` / `actor__last_name`, which do not exist here (every search was a 500)."""

    search_fields = ["object_repr", "changes", "actor__email", "actor__name", "=object_pk", "=cid"]
