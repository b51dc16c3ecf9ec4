"""The portal's plan page (issue 13 flow 5): upgrade, downgrade, cancel at period end and resume.

Each change is previewed first with the bill it makes, computed by the same service call the
admin's subscription actions preview with (billing.services.subscription with `preview=True`,
which prices through billing.bill and writes nothing), and done by a second POST that carries a
fingerprint of what was shown: if the bill changed in between (a price, usage billed at once, the
plan list), the new bill is shown again instead. Upgrades take effect at once, downgrades at the
end of the period (the service's default), cancellations at the end of the period.

Looking is for every member; changing is for owners, admins and billing members (viewers get
403), checked on every POST, behind Django's CSRF middleware. The services lock, validate, audit
with the signed-in user as actor and emit the seller's webhooks. Before any change the page asks
dunning whether the organization may change its plan now (plan_selectors.plan_change_gate_get)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from billing.selectors.organization import subscription_current_get
from billing.services.subscription import (
    SubscriptionChange,
    subscription_cancel,
    subscription_change_plan,
    subscription_resume,
)
from core.errors import DomainError
from portal.payment_views import _context
from portal.plan_selectors import plan_change_gate_get, plan_option_get, plan_options_list


def _fingerprint(action: str, change: SubscriptionChange) -> str:
    """What a preview showed (the action, the target plan and the bill's lines), to confirm
    exactly that. Not the effective instant: a change "now" moves with the clock."""
    version = change.subscription.plan_version if action == "cancel" else None
    shown = repr(
        [action, change.kind, version and version.pk, [(x.kind, x.description, x.amount) for x in change.bill.lines]]
    )
    return hashlib.sha256(shown.encode()).hexdigest()


def _page(request, external_id: str) -> dict:
    context = _context(request, external_id, "plan")
    organization = context["organization"]
    subscription = subscription_current_get(organization=organization)
    context.update(
        subscription=subscription,
        options=plan_options_list(organization=organization, subscription=subscription),
        gate=plan_change_gate_get(organization=organization),
        can_change=context["can_pay"],
        # The period is half-open [start, end): its last day is the one before the end instant
        # (an end at midnight would otherwise read as one day too many).
        period_last_instant=subscription and subscription.current_period_end - timedelta(microseconds=1),
    )
    return context


def _changing(request, external_id: str) -> dict:
    context = _page(request, external_id)
    if not context["can_change"]:
        raise PermissionDenied("Only owners, admins and billing members can change the plan.")
    return context


def _refused(request, context: dict, message: str):
    context["error"] = message
    return render(request, "portal/plan.html", context, status=400)


@login_required
@require_GET
def plan(request, external_id: str):
    return render(request, "portal/plan.html", _page(request, external_id))


def _preview_or_confirm(request, context: dict, action: str, run, *, done: str):
    """Preview on the first POST; do it on a second POST that confirms exactly what was shown."""
    if context["subscription"] is None:
        return _refused(request, context, "There is no subscription to change.")
    try:
        preview = run(preview=True)
        fingerprint = _fingerprint(action, preview)
        confirm = request.POST.get("confirm", "")
        if confirm == fingerprint:
            run(preview=False)
            messages.success(request, done)
            return redirect("portal:plan", external_id=context["organization"].external_id)
    except DomainError as exc:
        return _refused(request, context, exc.message)
    if confirm:
        context["error"] = "The bill changed since it was shown: check it and confirm again."
    context.update(preview=preview, action=action, fingerprint=fingerprint, target=request.POST.get("plan", ""))
    return render(request, "portal/plan.html", context)


@login_required
@require_POST
def plan_change(request, external_id: str):
    context = _changing(request, external_id)
    if context["subscription"] is not None and not context["gate"].allowed:
        # dunning's gate holds plan changes only: cancelling and resuming stay open (as in billing
        # and the API), so a customer in dunning may still leave, or take a cancellation back.
        return _refused(request, context, context["gate"].reason)
    version = plan_option_get(
        organization=context["organization"], subscription=context["subscription"], code=request.POST.get("plan", "")
    )
    if version is None:
        return _refused(request, context, "Choose one of the plans listed.")
    context["target_version"] = version

    def run(*, preview: bool) -> SubscriptionChange:
        return subscription_change_plan(
            actor=request.user, subscription=context["subscription"], plan_version=version, preview=preview
        )

    return _preview_or_confirm(request, context, "change", run, done=f"Your plan is changing to {version.plan.name}.")


@login_required
@require_POST
def plan_cancel(request, external_id: str):
    context = _changing(request, external_id)

    def run(*, preview: bool) -> SubscriptionChange:
        return subscription_cancel(
            actor=request.user, subscription=context["subscription"], at_period_end=True, preview=preview
        )

    return _preview_or_confirm(
        request, context, "cancel", run, done="Your subscription is canceled at the end of the period."
    )


@login_required
@require_POST
def plan_resume(request, external_id: str):
    """Take back a cancellation scheduled for the period end: nothing is billed by it, so there
    is no bill to preview; the page states what it does beside the button."""
    context = _changing(request, external_id)
    if context["subscription"] is None:
        return _refused(request, context, "There is no subscription to resume.")
    try:
        subscription_resume(actor=request.user, subscription=context["subscription"])
    except DomainError as exc:
        return _refused(request, context, exc.message)
    messages.success(request, "Your subscription continues: the cancellation was taken back.")
    return redirect("portal:plan", external_id=external_id)
