"""Coupons and credits in the Django admin: created through their services (which validate and
audit), never edited where it would change money already promised; the credit ledger is
append-only here too (grants are added, what is left of one can be voided)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from billing.admin.display import money_display
from billing.models import Coupon, CouponRedemption, CreditEntry, CreditKind, Organization
from billing.services.coupon import coupon_build, coupon_create, coupon_update
from billing.services.credit import credit_grant, credit_grant_check, credit_void
from billing.templatetags.money import money
from core.errors import DomainError


class RedemptionInline(admin.TabularInline):
    model = CouponRedemption
    extra = 0
    fields = ["organization", "subscription", "redeemed_at", "covers_from", "covers_until", "removed_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


_FIXED = [
    "code",
    "discount_type",
    "percent_off",
    "amount_off",
    "currency",
    "duration",
    "duration_periods",
    "applies_to",
    "meter_codes",
]


class CouponForm(forms.ModelForm):
    """On add, the service's own rules run in clean() (coupon_build), so a refusal shows on the
    form and nothing is saved; save_model then creates through the service."""

    class Meta:
        model = Coupon
        fields = [*_FIXED, "name", "max_redemptions", "redeem_by", "is_active"]

    def clean(self):
        data = super().clean()
        if self.instance.pk is None and not self.errors:
            try:
                coupon_build(**self.service_fields())
            except DomainError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from None
        return data

    def service_fields(self) -> dict:
        data = self.cleaned_data
        fields = {k: data.get(k) for k in (*_FIXED, "name", "max_redemptions", "redeem_by")}
        fields["meter_codes"] = fields["meter_codes"] or []
        fields["currency"] = fields["currency"] or ""
        return fields


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    form = CouponForm
    list_display = ["code", "name", "discount_type", "discount", "duration", "is_active"]
    list_filter = ["discount_type", "duration", "applies_to", "is_active"]
    search_fields = ["code", "name"]
    inlines = [RedemptionInline]

    # On change the fixed fields are shown, the amounts in their format (not the stored decimals).
    _SHOWN = {"percent_off": "percent_off_shown", "amount_off": "amount_off_shown"}

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return fields if obj is None else [self._SHOWN.get(f, f) for f in fields]

    def get_readonly_fields(self, request, obj=None):
        return [self._SHOWN.get(f, f) for f in _FIXED] if obj is not None else []

    @admin.display(description="percent off")
    def percent_off_shown(self, obj: Coupon) -> str:
        return f"{obj.percent_off.normalize():f} %" if obj.percent_off is not None else "—"

    @admin.display(description="amount off")
    def amount_off_shown(self, obj: Coupon) -> str:
        return money(obj.amount_off, obj.currency) if obj.amount_off is not None else "—"

    @admin.display(description="discount")
    def discount(self, obj: Coupon) -> str:
        if obj.discount_type == "percentage":
            return f"{obj.percent_off.normalize():f} %"
        return money(obj.amount_off, obj.currency)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            changed = {k: form.cleaned_data[k] for k in ("name", "is_active", "max_redemptions", "redeem_by")}
            coupon_update(actor=request.user, coupon=obj, **changed)
        else:
            made = coupon_create(actor=request.user, **form.service_fields())
            obj.pk, obj.created_at = made.pk, made.created_at
            obj._state.adding = False


class GrantForm(forms.ModelForm):
    class Meta:
        model = CreditEntry
        fields = ["organization", "kind", "amount", "expires_at", "description"]

    kind = forms.ChoiceField(choices=[(CreditKind.PURCHASE, "Purchased"), (CreditKind.PROMOTIONAL, "Promotional")])

    def clean(self):
        data = super().clean()
        if not self.errors:
            organization = data["organization"]
            try:
                credit_grant_check(
                    organization=organization,
                    amount=data["amount"],
                    currency=organization.currency,
                    kind=data["kind"],
                    expires_at=data.get("expires_at"),
                    at=timezone.now(),
                )
            except DomainError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from None
        return data


@admin.register(CreditEntry)
class CreditEntryAdmin(admin.ModelAdmin):
    form = GrantForm
    list_display = ["created_at", "organization", "kind", "amount_display", "expires_at", "grant", "reference"]
    list_filter = ["kind", "currency"]
    search_fields = ["organization__external_id", "reference", "description"]
    list_select_related = ["organization"]
    raw_id_fields = ["organization"]
    actions = ["void_remaining"]

    amount_display = money_display("amount")

    def get_fields(self, request, obj=None):
        if obj is None:
            return super().get_fields(request, obj)
        shown = {"amount": "amount_display"}
        return [shown.get(f.name, f.name) for f in CreditEntry._meta.fields]

    def get_readonly_fields(self, request, obj=None):
        # an entry is never changed (the ledger is append-only): every field shown, read-only
        return [] if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        organization: Organization = data["organization"]
        made = credit_grant(
            actor=request.user,
            organization=organization,
            amount=data["amount"],
            currency=organization.currency,
            kind=data["kind"],
            expires_at=data.get("expires_at"),
            description=data.get("description", ""),
        )
        obj.pk, obj.created_at = made.pk, made.created_at
        obj._state.adding = False

    @admin.action(description="Void what is left of the selected grants", permissions=["void"])
    def void_remaining(self, request, queryset):
        for grant in queryset:
            try:
                credit_void(actor=request.user, grant=grant, description=f"Voided by {request.user.email}")
            except DomainError as exc:
                self.message_user(request, f"#{grant.pk}: {exc.message}", messages.WARNING)

    def has_void_permission(self, request):
        return request.user.has_perm("billing.change_creditentry")
