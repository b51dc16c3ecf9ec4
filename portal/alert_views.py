"""The portal's alerts and limits page (issue 13 flows 4 and 7): the customer's alert thresholds
(usage of a meter or spend, absolute or a percent of a budget) and the alerts that fired; per
meter, the plan's limit, the customer's own cap (soft or hard), this period's usage and whether
the meter is blocked.

Every member sees the page; owners, admins and billing members change it (viewers get 403),
behind Django's CSRF middleware. Input is read with Django forms: anything malformed is a 400
with the form's message, nothing written. Evaluation is portal.alerts, from the drain path."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from billing.models import PlanUsageLimit, UsageCap, UsageLimitReached
from core.errors import DomainError
from metering.models import Meter
from metering.selectors.meter import meter_list
from metering.selectors.usage import usage_get
from portal.alerts import (
    _current_period,
    alert_create,
    alert_delete,
    limits_effective,
    usage_cap_delete,
    usage_cap_set,
)
from portal.models import AlertMetric, UsageAlert, UsageAlertFiring
from portal.payment_views import _context

FIRINGS_SHOWN = 20
_AMOUNT = {"max_digits": 18, "decimal_places": 6, "min_value": Decimal("0.000001")}


class AlertForm(forms.Form):
    metric = forms.ChoiceField(choices=AlertMetric.choices)
    meter = forms.ModelChoiceField(queryset=Meter.objects.all(), to_field_name="code", required=False)
    kind = forms.ChoiceField(choices=[("absolute", "Absolute"), ("percent", "Percent of a budget")])
    threshold = forms.DecimalField(required=False, **_AMOUNT)
    budget = forms.DecimalField(required=False, **_AMOUNT)
    percent = forms.DecimalField(required=False, max_digits=7, decimal_places=2, min_value=Decimal("0.01"))

    def clean(self):
        data = super().clean()
        if data.get("metric") == AlertMetric.USAGE and not data.get("meter"):
            self.add_error("meter", "Choose the meter to watch.")
        if data.get("kind") == "absolute" and data.get("threshold") is None:
            self.add_error("threshold", "Give the threshold.")
        if data.get("kind") == "percent":
            if data.get("budget") is None:
                self.add_error("budget", "Give the budget.")
            if data.get("percent") is None:
                self.add_error("percent", "Give the percent of the budget.")
        return data


class CapForm(forms.Form):
    meter = forms.ModelChoiceField(queryset=Meter.objects.all(), to_field_name="code")
    limit = forms.DecimalField(max_digits=18, decimal_places=6, min_value=Decimal(0))
    hard = forms.BooleanField(required=False)


def _page(request, external_id: str) -> dict:
    context = _context(request, external_id, "alerts")
    organization = context["organization"]
    now = timezone.now()
    subscription, period = _current_period(organization, now)
    limits = limits_effective(organization=organization, subscription=subscription)
    caps = {cap.meter_id: cap for cap in UsageCap.objects.filter(organization=organization)}
    # the plan's own limits, one read (plan_limit_get per meter re-read the subscription each time)
    plan_limits = (
        dict(PlanUsageLimit.objects.filter(plan_id=subscription.plan_version.plan_id).values_list("meter_id", "limit"))
        if subscription is not None
        else {}
    )
    reached = {
        (row.meter_id, row.hard): row
        for row in UsageLimitReached.objects.filter(organization=organization, period_start=period.start)
    }
    rows = []
    meters = list(meter_list())
    limited = {limit.meter.pk for limit in limits} | set(caps)
    for meter in meters:
        value = None
        if meter.pk in limited:  # only the meters a limit or cap watches
            value = usage_get(meter=meter, customer=organization.external_id, start=period.start, end=period.end).value
        rows.append(
            {
                "meter": meter,
                "plan_limit": plan_limits.get(meter.pk),
                "cap": caps.get(meter.pk),
                "value": value,
                "blocked": (meter.pk, True) in reached,
                "soft_reached": (meter.pk, False) in reached,
            }
        )
    alerts = list(UsageAlert.objects.filter(organization=organization).select_related("meter"))
    fired_now = set(
        UsageAlertFiring.objects.filter(alert__organization=organization, period_start=period.start).values_list(
            "alert_id", flat=True
        )
    )
    context.update(
        period=period,
        meters=meters,
        alerts=[(alert, alert.pk in fired_now) for alert in alerts],
        firings=UsageAlertFiring.objects.filter(alert__organization=organization).select_related("alert__meter")[
            :FIRINGS_SHOWN
        ],
        limit_rows=rows,
        alert_form=context.get("alert_form") or AlertForm(),
        cap_form=context.get("cap_form") or CapForm(),
    )
    return context


def _changing(request, external_id: str) -> dict:
    context = _context(request, external_id, "alerts")
    if not context["can_pay"]:
        raise PermissionDenied("Only members with billing rights change alerts and caps.")
    return context


def _refused(request, external_id: str, message: str, **forms_shown):
    context = _page(request, external_id)
    context.update(error=message, **forms_shown)
    return render(request, "portal/alerts.html", context, status=400)


def _form_message(form: forms.Form) -> str:
    parts = [f"{'' if name == '__all__' else name + ': '}{' '.join(errors)}" for name, errors in form.errors.items()]
    return " ".join(parts)


@login_required
@require_GET
def alerts(request, external_id: str):
    return render(request, "portal/alerts.html", _page(request, external_id))


@login_required
@require_POST
def alert_add(request, external_id: str):
    context = _changing(request, external_id)
    form = AlertForm(request.POST)
    if not form.is_valid():
        return _refused(request, external_id, _form_message(form), alert_form=form)
    data = form.cleaned_data
    percent = data["kind"] == "percent"
    try:
        alert_create(
            organization=context["organization"],
            user=request.user,
            metric=data["metric"],
            meter=data["meter"] if data["metric"] == AlertMetric.USAGE else None,
            threshold=None if percent else data["threshold"],
            budget=data["budget"] if percent else None,
            percent=data["percent"] if percent else None,
        )
    except DomainError as exc:
        return _refused(request, external_id, exc.message, alert_form=form)
    messages.success(request, "Alert added.")
    return redirect("portal:alerts", external_id)


@login_required
@require_POST
def alert_remove(request, external_id: str):
    context = _changing(request, external_id)
    try:
        alert_delete(organization=context["organization"], alert_id=int(request.POST.get("alert", "")))
    except (ValueError, DomainError):
        return _refused(request, external_id, "No such alert.")
    messages.success(request, "Alert removed.")
    return redirect("portal:alerts", external_id)


@login_required
@require_POST
def cap_set(request, external_id: str):
    context = _changing(request, external_id)
    form = CapForm(request.POST)
    if not form.is_valid():
        return _refused(request, external_id, _form_message(form), cap_form=form)
    data = form.cleaned_data
    try:
        usage_cap_set(
            organization=context["organization"],
            user=request.user,
            meter=data["meter"],
            limit=data["limit"],
            hard=data["hard"],
        )
    except DomainError as exc:
        return _refused(request, external_id, exc.message, cap_form=form)
    messages.success(request, f"Cap on {data['meter'].name} saved.")
    return redirect("portal:alerts", external_id)


@login_required
@require_POST
def cap_remove(request, external_id: str):
    context = _changing(request, external_id)
    meter = Meter.objects.filter(code=request.POST.get("meter", "")).first()
    try:
        if meter is None:
            raise DomainError("No such cap.", code="not_found")
        usage_cap_delete(organization=context["organization"], meter_id=meter.pk)
    except DomainError:
        return _refused(request, external_id, "No such cap.")
    messages.success(request, f"Cap on {meter.name} removed.")
    return redirect("portal:alerts", external_id)
