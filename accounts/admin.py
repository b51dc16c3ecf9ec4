from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin, messages

from accounts.models import APIKey, StaffRole, User
from accounts.services.api_key import apikey_revoke
from accounts.services.user import member_user_create, staff_user_create, user_invite


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """Adding a user invites them (accounts.services.user): an email with a link to choose their
    password, which also verifies the address. With a staff role they are staff (and enrol an
    authenticator app at first sign-in); without, a customer member (give them a membership on
    the organization's page)."""

    list_display = ["email", "name", "staff_role", "is_active", "date_joined", "last_login"]
    list_filter = ["staff_role", "is_active"]
    search_fields = ["email", "name"]
    fields = ["email", "name", "staff_role", "is_active", "date_joined", "last_login"]
    readonly_fields = ["date_joined", "last_login"]
    actions = ["invite_again"]

    def get_fields(self, request, obj=None):
        return ["email", "name", "staff_role"] if obj is None else self.fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # The link points at the site the staff member is using (the tenant's host).
        base_url = request.build_absolute_uri("/")
        if obj.staff_role:
            made = staff_user_create(
                email=obj.email,
                password=None,
                role=obj.staff_role,
                actor=request.user,
                base_url=base_url,
                name=obj.name,
            )
        else:
            made = member_user_create(
                email=obj.email, password=None, name=obj.name, actor=request.user, base_url=base_url
            )
        obj.pk, obj.date_joined, obj.password = made.pk, made.date_joined, made.password
        obj._state.adding = False
        self.message_user(request, f"An invitation to choose a password was emailed to {made.email}.", messages.INFO)

    @admin.action(description="Email a new invitation (a link to choose a password)", permissions=["change"])
    def invite_again(self, request, queryset):
        base_url = request.build_absolute_uri("/")
        sent = []
        for user in queryset:
            if user.has_usable_password():
                already = f"No invitation for {user.email}: they have chosen a password (“Forgot your password?”)."
                self.message_user(request, already, messages.WARNING)
                continue
            user_invite(user=user, base_url=base_url, actor=request.user)
            sent.append(user.email)
        if sent:
            self.message_user(request, f"Invitation emailed to {', '.join(sent)}.", messages.SUCCESS)

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
