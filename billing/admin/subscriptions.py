"""Subscriptions in the Django admin. Rows are read-only: every change goes through the
subscription services (billing.services.subscription), each behind a preview of the bill it
makes, confirmed with a second submit of the same form."""

from __future__ import annotations

import hashlib

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing.models import PlanVersion, Subscription, SubscriptionPhase
from billing.services.subscription import (
    ChangeTiming,
    subscription_cancel,
    subscription_change_plan,
    subscription_resume,
)
from core.errors import DomainError


def _fingerprint(change) -> str:
    """What a preview showed (its lines), to confirm exactly that. Not the effective instant: a
    change "now" moves with the clock, a second later is the same change."""
    shown = repr([(x.kind, x.description, x.amount) for x in change.bill.lines])
    return hashlib.sha256(shown.encode()).hexdigest()


class PhaseInline(admin.TabularInline):
    model = SubscriptionPhase
    extra = 0
    fields = ["plan_version", "starts_at", "ends_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ChangePlanForm(forms.Form):
    plan_version = forms.ModelChoiceField(queryset=PlanVersion.objects.none())
    timing = forms.ChoiceField(
        choices=[
            ("", "Upgrades now, downgrades at period end"),
            (ChangeTiming.NOW, "Now"),
            (ChangeTiming.PERIOD_END, "At period end"),
        ],
        required=False,
    )

    def __init__(self, *args, subscription: Subscription, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan_version"].queryset = (
            PlanVersion.objects.filter(plan__currency=subscription.plan_version.plan.currency, plan__is_active=True)
            .exclude(pk=subscription.plan_version_id)
            .select_related("plan")
            .order_by("plan__code", "-version")
        )


class BillingProblemFilter(admin.SimpleListFilter):
    """Subscriptions the billing run could not bill (billing_problem), to find and fix them."""

    title = "billing problem"
    parameter_name = "billing_problem"

    def lookups(self, request, model_admin):
        return [("yes", "Has a billing problem"), ("no", "No billing problem")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(billing_problem="")
        if self.value() == "no":
            return queryset.filter(billing_problem="")
        return queryset


class CancelForm(forms.Form):
    at_period_end = forms.TypedChoiceField(
        choices=[("1", "At the end of the current period"), ("0", "At once (credits the unused time)")],
        coerce=lambda v: v == "1",
        initial="1",
    )


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "organization",
        "plan_version",
        "status",
        "current_period_start",
        "current_period_end",
        "next_bill_at",
        "has_billing_problem",
    ]
    list_filter = ["status", "billing_mode", BillingProblemFilter]
    search_fields = ["organization__external_id", "organization__name"]
    list_select_related = ["organization", "plan_version__plan"]
    readonly_fields = [
        "organization",
        "plan_version",
        "status",
        "billing_mode",
        "billing_anchor",
        "started_at",
        "current_period_start",
        "current_period_end",
        "trial_end",
        "cancel_at_period_end",
        "canceled_at",
        "ended_at",
        "billed_through",
        "next_bill_at",
        "billing_problem",
        "billing_problem_at",
        "actions_links",
    ]
    exclude = []
    inlines = [PhaseInline]

    def has_add_permission(self, request):
        return False  # subscriptions are made through the API (or the portal), which validates them

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Billing problem", boolean=True)
    def has_billing_problem(self, obj: Subscription) -> bool:
        return bool(obj.billing_problem)

    @admin.display(description="Actions")
    def actions_links(self, obj: Subscription):
        if obj.pk is None:
            return "-"
        change = reverse("admin:billing_subscription_change_plan", args=[obj.pk])
        cancel = reverse("admin:billing_subscription_cancel", args=[obj.pk])
        resume = reverse("admin:billing_subscription_resume", args=[obj.pk])
        return format_html(
            '<a href="{}">Change plan</a> · <a href="{}">Cancel</a> · <a href="{}">Resume</a>', change, cancel, resume
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/change-plan/", wrap(self.change_plan_view), name="billing_subscription_change_plan"),
            path("<path:object_id>/cancel/", wrap(self.cancel_view), name="billing_subscription_cancel"),
            path("<path:object_id>/resume/", wrap(self.resume_view), name="billing_subscription_resume"),
            *super().get_urls(),
        ]

    def _subscription(self, request, object_id) -> Subscription:
        if not self.has_change_permission(request):
            raise PermissionDenied
        subscription = (
            Subscription.objects.select_related("organization", "plan_version__plan")
            .filter(pk=unquote(object_id))
            .first()
        )
        if subscription is None:
            raise Http404
        return subscription

    def _action(self, request, subscription, *, title, form, run):
        """Preview on the first submit, do it on the confirmed second; errors stay on the form."""
        preview = error = None
        if request.method == "POST" and form.is_valid():
            try:
                preview = run(form.cleaned_data, preview=True)
                # Confirm only what was shown: a changed choice or bill is previewed again.
                if request.POST.get("confirm") == _fingerprint(preview):
                    run(form.cleaned_data, preview=False)
                    self.message_user(request, f"{title}: done.", messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:billing_subscription_change", args=[subscription.pk]))
                if request.POST.get("confirm"):
                    error = "The bill changed since it was shown: check it and confirm again."
            except DomainError as exc:
                error = exc.message
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": subscription,
            "title": f"{title}: {subscription}",
            "form": form,
            "preview": preview,
            "fingerprint": _fingerprint(preview) if preview else "",
            "error": error,
        }
        return TemplateResponse(request, "billing/admin/subscription_action.html", context)

    def change_plan_view(self, request, object_id):
        subscription = self._subscription(request, object_id)
        form = ChangePlanForm(request.POST or None, subscription=subscription)

        def run(data, *, preview):
            return subscription_change_plan(
                actor=request.user,
                subscription=subscription,
                plan_version=data["plan_version"],
                timing=data["timing"] or None,
                preview=preview,
            )

        return self._action(request, subscription, title="Change plan", form=form, run=run)

    def cancel_view(self, request, object_id):
        subscription = self._subscription(request, object_id)
        form = CancelForm(request.POST or None)

        def run(data, *, preview):
            return subscription_cancel(
                actor=request.user, subscription=subscription, at_period_end=data["at_period_end"], preview=preview
            )

        return self._action(request, subscription, title="Cancel", form=form, run=run)

    def resume_view(self, request, object_id):
        """A page stating what is taken back (the "Resume" link is a GET: it used to redirect
        without doing anything); the confirming POST resumes."""
        subscription = self._subscription(request, object_id)
        change_url = reverse("admin:billing_subscription_change", args=[subscription.pk])
        error = None
        if request.method == "POST":
            try:
                subscription_resume(actor=request.user, subscription=subscription)
            except DomainError as exc:
                error = exc.message
            else:
                self.message_user(request, "The cancellation was taken back.", messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": subscription,
            "title": f"Resume: {subscription}",
            "change_url": change_url,
            "error": error,
        }
        return TemplateResponse(request, "billing/admin/subscription_resume.html", context)
