"""The staff pages' forms: what each action takes, checked before the confirm step shows its money
effect. The services check again (and lock) when the action is done."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from auditlog.models import LogEntry
from django import forms
from django.contrib.contenttypes.models import ContentType
from django.db.models import OuterRef, Subquery

from adminpanel.selectors import AuditFilter
from billing.models import (
    GRANT_KINDS,
    Coupon,
    CreditKind,
    Organization,
    PlanVersion,
    Subscription,
    SubscriptionStatus,
)
from billing.services.subscription import ChangeTiming
from billing.templatetags.money import money
from core.money import round_money
from invoicing.models import Invoice, InvoiceStatus
from payments.models import Payment, PaymentStatus

LIVE = (SubscriptionStatus.PENDING, SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


class OrganizationForm(forms.Form):
    """An action's form on one organization's page (its choices are the organization's)."""

    def __init__(self, *args, organization: Organization, **kwargs):
        self.organization = organization
        super().__init__(*args, **kwargs)


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Name, customer ID or email")


def latest_versions(currency: str):
    """The newest version of each active plan in `currency`: what staff may subscribe to (unlike
    the portal, not only the self-serve plans)."""
    latest = PlanVersion.objects.filter(plan=OuterRef("plan")).order_by("-version").values("pk")[:1]
    return (
        PlanVersion.objects.filter(plan__is_active=True, plan__currency=currency, pk=Subquery(latest))
        .select_related("plan")
        .order_by("plan__name", "pk")
    )


class PlanVersionField(forms.ModelChoiceField):
    def label_from_instance(self, obj: PlanVersion) -> str:
        return f"{obj.plan.name} ({obj.plan.code} v{obj.version})"


class SubscriptionCreateForm(OrganizationForm):
    plan_version = PlanVersionField(queryset=PlanVersion.objects.none(), label="Plan")
    billing_mode = forms.ChoiceField(
        choices=[("calendar", "Calendar (periods start on the 1st)"), ("anniversary", "Anniversary (from the start)")]
    )
    start_on = forms.DateField(
        label="Starts on", help_text="At midnight in the organization's timezone; within a year of today"
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, organization=organization, **kwargs)
        self.fields["plan_version"].queryset = latest_versions(organization.currency)
        self.fields["start_on"].initial = datetime.now(ZoneInfo(organization.timezone)).date()

    def start_at(self) -> datetime:
        # A whole day, not "now": the preview's prorated first bill is then the bill the confirm makes.
        return datetime.combine(self.cleaned_data["start_on"], time(), tzinfo=ZoneInfo(self.organization.timezone))


class PlanChangeForm(OrganizationForm):
    subscription = forms.ModelChoiceField(queryset=Subscription.objects.none())
    plan_version = PlanVersionField(queryset=PlanVersion.objects.none(), label="New plan")
    timing = forms.ChoiceField(
        choices=[
            ("", "By direction (upgrades now, downgrades at period end)"),
            (ChangeTiming.NOW, "Now"),
            (ChangeTiming.PERIOD_END, "At period end"),
        ],
        required=False,
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, organization=organization, **kwargs)
        self.fields["subscription"].queryset = organization.subscriptions.filter(status__in=LIVE).select_related(
            "plan_version__plan"
        )
        self.fields["plan_version"].queryset = latest_versions(organization.currency)


class CreditGrantForm(OrganizationForm):
    amount = forms.DecimalField(max_digits=18, decimal_places=4, min_value=0)
    kind = forms.ChoiceField(choices=[(k, CreditKind(k).label) for k in GRANT_KINDS], initial=CreditKind.PROMOTIONAL)
    expires_on = forms.DateField(required=False, help_text="Last day it can be used, in the organization's timezone")
    description = forms.CharField(max_length=300, required=False)

    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=ZoneInfo(self.organization.timezone))


class CreditNoteForm(OrganizationForm):
    invoice = forms.ModelChoiceField(queryset=Invoice.objects.none())
    amount = forms.DecimalField(
        max_digits=18, decimal_places=4, min_value=0, help_text="Net, before tax (tax is credited in proportion)"
    )
    reason = forms.CharField(max_length=300)

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, organization=organization, **kwargs)
        self.fields["invoice"].queryset = Invoice.objects.filter(
            organization=organization,
            status__in=[InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE],
        ).order_by("-issued_at", "-pk")


class CouponForm(OrganizationForm):
    coupon = forms.ModelChoiceField(
        queryset=Coupon.objects.filter(is_active=True).order_by("code"), to_field_name="code"
    )


class PaymentField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Payment) -> str:
        return (
            f"{obj.invoice.number} attempt {obj.number} ({obj.amount} {obj.currency}, {obj.amount_refunded} refunded)"
        )


class RefundForm(OrganizationForm):
    """A refund of a succeeded payment on a paid invoice (payments.services.refunds): in full (no
    amount: a credit note of everything still creditable, paid back up to what is left of the
    payment) or in part (an amount, gross, at most what is left: a credit note of that much,
    spread over the invoice's lines, paid back). Refunds of an existing credit note are the API's
    (POST /api/v1/payments/<id>/refunds with `credit_note`)."""

    payment = PaymentField(queryset=Payment.objects.none())
    amount = forms.DecimalField(
        max_digits=18,
        decimal_places=4,
        min_value=0,
        required=False,
        help_text="Gross, with tax; at most what is left of the payment. Empty: refund in full",
    )
    reason = forms.CharField(max_length=300)

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, organization=organization, **kwargs)
        self.fields["payment"].queryset = (
            Payment.objects.filter(organization=organization, status=PaymentStatus.SUCCEEDED)
            .select_related("invoice")
            .order_by("-created_at", "-pk")
        )

    def clean(self):
        data = super().clean()
        payment, amount = data.get("payment"), data.get("amount")
        if payment is not None and amount is not None:
            left = payment.amount - payment.amount_refunded
            if amount <= 0 or round_money(amount, payment.currency) != amount:
                self.add_error("amount", f"A positive amount in {payment.currency}'s decimals.")
            elif amount > left:
                self.add_error("amount", f"At most the {money(left, payment.currency)} left to refund.")
        return data


class OneOffChargeForm(OrganizationForm):
    """A one-off charge (invoicing.services.one_off): one line, in the organization's currency."""

    description = forms.CharField(max_length=300)
    amount = forms.DecimalField(
        max_digits=18,
        decimal_places=4,
        min_value=0,
        help_text="As the tenant's prices are: before tax unless they include it",
    )


class CloseForm(OrganizationForm):
    external_id = forms.CharField(max_length=255, help_text="Type the customer ID to confirm")

    def clean_external_id(self) -> str:
        value = self.cleaned_data["external_id"]
        if value != self.organization.external_id:
            raise forms.ValidationError("This is not the organization's customer ID.")
        return value


class DunningPauseForm(OrganizationForm):
    pause = forms.TypedChoiceField(
        choices=[("1", "Pause dunning (no retry, email or stage)"), ("0", "Resume dunning")],
        coerce=lambda v: v == "1",
        label="Dunning",
    )


class DunningInvoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Invoice) -> str:
        return f"{obj.number} ({obj.dunning_case.get_stage_display()})"


class DunningInvoiceForm(OrganizationForm):
    """An invoice of the organization in open dunning: what retry now and write off act on."""

    invoice = DunningInvoiceField(queryset=Invoice.objects.none())

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, organization=organization, **kwargs)
        self.fields["invoice"].queryset = (
            Invoice.objects.filter(organization=organization, dunning_case__closed_at__isnull=True)
            .select_related("dunning_case")
            .order_by("dunning_case__started_at", "pk")
        )


class SuspendForm(OrganizationForm):
    suspend = forms.TypedChoiceField(
        choices=[("1", "Suspend (block usage and plan changes)"), ("0", "Reactivate (lift the staff suspension)")],
        coerce=lambda v: v == "1",
        label="Suspension",
    )


class NoteForm(OrganizationForm):
    body = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3}), label="Note")


AUDIT_MODELS = (
    "billing.organization",
    "billing.subscription",
    "billing.creditentry",
    "billing.coupon",
    "billing.plan",
    "invoicing.invoice",
    "invoicing.creditnote",
    "accounts.user",
    "accounts.apikey",
)


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=254, label="Actor email")
    object_type = forms.ChoiceField(required=False, label="Object type")
    object_id = forms.CharField(required=False, max_length=64, label="Object ID")
    action = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Any"), *[(value, label) for value, label in LogEntry.Action.choices]],
    )
    event = forms.CharField(required=False, max_length=100, help_text="e.g. subscription.upgrade")
    since = forms.DateField(required=False, label="From (UTC day)")
    until = forms.DateField(required=False, label="To (UTC day, included)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        types = ContentType.objects.filter(
            app_label__in={m.split(".")[0] for m in AUDIT_MODELS}, model__in={m.split(".")[1] for m in AUDIT_MODELS}
        ).order_by("app_label", "model")
        self.types = {f"{t.app_label}.{t.model}": t for t in types}
        self.fields["object_type"].choices = [("", "Any"), *[(key, key) for key in self.types]]

    def filter(self) -> AuditFilter:
        data = self.cleaned_data
        utc = ZoneInfo("UTC")
        return AuditFilter(
            actor=data.get("actor") or "",
            content_type=self.types.get(data.get("object_type") or ""),
            object_id=data.get("object_id") or "",
            action=data.get("action"),
            event=data.get("event") or "",
            since=datetime.combine(data["since"], time(), tzinfo=utc) if data.get("since") else None,
            until=(
                datetime.combine(data["until"] + timedelta(days=1), time(), tzinfo=utc) if data.get("until") else None
            ),
        )
