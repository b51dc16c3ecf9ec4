"""dj-stripe's own admins, narrowed.

dj-stripe registers about 40 admins for its mirror of the tenant's Stripe account (keys, webhook
endpoints, customers, charges…). They are a tool for whoever runs the Stripe account, not for day
to day billing work, and some show Stripe keys: only owners see them. dj-stripe 2.11 moved many
columns into `stripe_data`, but its admins still search the old column names (a 500 on every
search); those search fields are pointed at the same keys inside `stripe_data`.
"""

from __future__ import annotations

import djstripe.admin  # noqa: F401  (registers dj-stripe's admins first, whatever the app order)
from django.contrib import admin
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.core.exceptions import FieldDoesNotExist

from accounts.models import StaffRole

_SEARCH_PREFIXES = "^=@"


def _search_field_fixed(model, name: str) -> str | None:
    """`name` if it resolves on `model`; else the same key inside `stripe_data`; else None."""
    prefix = name[0] if name[0] in _SEARCH_PREFIXES else ""
    path = name.removeprefix(prefix)
    try:
        get_fields_from_path(model, path)
        return name
    except (FieldDoesNotExist, NotRelationField):
        pass
    try:
        model._meta.get_field("stripe_data")
    except FieldDoesNotExist:
        return None
    return f"{prefix}stripe_data__{path}"


class OwnerOnlyMixin:
    def _is_owner(self, request) -> bool:
        return getattr(request.user, "staff_role", None) == StaffRole.OWNER

    def has_module_permission(self, request):
        return self._is_owner(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._is_owner(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args, **kwargs):
        return self._is_owner(request) and super().has_add_permission(request, *args, **kwargs)

    def has_change_permission(self, request, obj=None):
        return self._is_owner(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._is_owner(request) and super().has_delete_permission(request, obj)


class ViewOnlyMixin:
    """dj-stripe's webhook endpoints are looked at, not made here: the tenant's Stripe webhooks come
    to our own view with the tenant's encrypted secret (docs/payments.md), while dj-stripe's
    forms register an endpoint at Stripe with dj-stripe's global keys, store its secret in clear
    and let a failed call to Stripe escape as a server error (found by the PCI sweep)."""

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


_VIEW_ONLY = {"webhookendpoint"}


def _djstripe_admins_narrow(site: admin.AdminSite) -> None:
    for model, model_admin in list(site._registry.items()):
        if model._meta.app_label != "djstripe":
            continue
        fixed = [f for f in (_search_field_fixed(model, n) for n in model_admin.search_fields) if f is not None]
        view_only = (ViewOnlyMixin,) if model._meta.model_name in _VIEW_ONLY else ()
        narrowed = type(
            f"Owner{type(model_admin).__name__}",
            (*view_only, OwnerOnlyMixin, type(model_admin)),
            {"search_fields": tuple(fixed), "__module__": __name__},
        )
        site.unregister(model)
        site.register(model, narrowed)


_djstripe_admins_narrow(admin.site)


# ---------------------------------------------------------------------------------------------
# The ledger and the tenant's gateway settings


from django import forms  # noqa: E402

from billing.admin.display import money_display  # noqa: E402
from payments.models import GatewayEventRecord, GatewaySettings, Payment, PaymentAttempt  # noqa: E402


class GatewaySettingsForm(forms.ModelForm):
    """Secrets are write-only: the form never shows them (not even masked); a blank field keeps
    the stored value, a typed one replaces it (encrypted by core.crypto)."""

    stripe_secret_key = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text="Leave blank to keep the stored key."
    )
    stripe_webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The endpoint's signing secret (whsec_…). Leave blank to keep the stored one.",
    )
    paypal_client_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The PayPal REST app's secret. Leave blank to keep the stored one.",
    )

    class Meta:
        model = GatewaySettings
        fields = ["stripe_publishable_key", "paypal_client_id", "paypal_webhook_id"]

    def save(self, commit=True):
        row = super().save(commit=False)
        if self.cleaned_data.get("stripe_secret_key"):
            row.stripe_secret_key_set(self.cleaned_data["stripe_secret_key"])
        if self.cleaned_data.get("stripe_webhook_secret"):
            row.stripe_webhook_secret_set(self.cleaned_data["stripe_webhook_secret"])
        if self.cleaned_data.get("paypal_client_secret"):
            row.paypal_client_secret_set(self.cleaned_data["paypal_client_secret"])
        if commit:
            row.save()
        return row


@admin.register(GatewaySettings)
class GatewaySettingsAdmin(OwnerOnlyMixin, admin.ModelAdmin):
    form = GatewaySettingsForm
    list_display = ("__str__", "stripe_publishable_key", "secret_key_stored", "webhook_secret_stored", "updated_at")

    @admin.display(boolean=True, description="Secret key stored")
    def secret_key_stored(self, obj):
        return bool(obj.stripe_secret_key_encrypted)

    @admin.display(boolean=True, description="Webhook secret stored")
    def webhook_secret_stored(self, obj):
        return bool(obj.stripe_webhook_secret_encrypted)

    def has_add_permission(self, request, *args, **kwargs):
        return super().has_add_permission(request) and not GatewaySettings.objects.exists()


class PaymentAttemptInline(admin.TabularInline):
    model = PaymentAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("step", "outcome", "status_after", "failure_code", "message", "started_at", "finished_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """Read-only: the ledger changes only through its services."""

    list_display = ("pk", "invoice", "organization", "amount_display", "status", "failure_code", "created_at")
    list_filter = ("status", "method_type", "failure_code")
    search_fields = ("gateway_payment_id", "invoice__number", "organization__external_id")
    inlines = [PaymentAttemptInline]

    amount_display = money_display("amount")
    amount_refunded_display = money_display("amount_refunded", label="refunded")

    def get_readonly_fields(self, request, obj=None):
        # Every field shown, the money ones by their display: a name in `fields` that is neither a
        # model field nor read-only breaks the change form (a POST answered 500, found by the PCI
        # sweep), and nothing here is edited by hand.
        return self.get_fields(request, obj)

    def get_fields(self, request, obj=None):
        # the amounts in their currency, beside the other columns
        money = {"amount": "amount_display", "amount_refunded": "amount_refunded_display"}
        return [money.get(f.name, f.name) for f in Payment._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(GatewayEventRecord)
class GatewayEventRecordAdmin(admin.ModelAdmin):
    list_display = ("event_id", "type", "outcome", "created", "received_at")
    list_filter = ("outcome", "type")
    search_fields = ("event_id",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in GatewayEventRecord._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


from payments import admin_bank  # noqa: E402, F401  (bank transfers and statement imports)
