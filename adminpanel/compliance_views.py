"""The staff compliance dashboard (issue 14 item 6): the checks' last results, who may do the
controlled money actions, approval thresholds and pending approvals, and GDPR export and erasure.

Actions follow the staff pages' pattern (adminpanel.views): role-checked on every POST, a first
POST that shows what will happen with a fingerprint, a second that carries it and does it through
a service that audits with the signed-in user as actor."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import audit_actor, audit_event
from accounts.models import StaffRole
from adminpanel import compliance
from adminpanel.models import ApprovalKind, ApprovalStatus, ApprovalThreshold, ComplianceCheck, PendingApproval
from adminpanel.selectors import organization_usage_days
from adminpanel.views import _allowed, _money, confirm_two_posts, payment_refund_request
from billing.models import Organization
from billing.services.credit import credit_grant
from core.errors import DomainError
from invoicing.models import Invoice
from payments.models import Payment
from tenants.validators import validate_currency

APPROVAL_PERMS = {ApprovalKind.CREDIT: "billing.add_creditentry", ApprovalKind.REFUND: "payments.add_refund"}


class ThresholdForm(forms.Form):
    currency = forms.CharField(max_length=3, help_text="ISO 4217, e.g. EUR")
    amount = forms.DecimalField(max_digits=18, decimal_places=4, min_value=0, label="Approve above")

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].upper()
        validate_currency(currency)
        return currency


class CustomerForm(forms.Form):
    external_id = forms.CharField(max_length=255, label="Customer ID")

    def clean_external_id(self) -> str:
        value = self.cleaned_data["external_id"]
        self.organization = Organization.objects.filter(external_id=value).first()
        if self.organization is None:
            raise forms.ValidationError("No organization has this customer ID.")
        return value


class DecisionForm(forms.Form):
    """Nothing to fill in: the approval is the URL's; the confirm carries what was shown."""


def _page(request, status: int = 200, **extra):
    checks = {row.key: row for row in ComplianceCheck.objects.all()}
    rows = [(check, checks.get(check.key)) for check in compliance.CHECKS]
    context = {
        "section": "compliance",
        "rows": rows,
        "roles": StaffRole.labels,
        "roles_table": compliance.roles_table(),
        "thresholds": ApprovalThreshold.objects.all(),
        "currencies": compliance.currencies_in_use(),
        "pending": PendingApproval.objects.filter(status=ApprovalStatus.PENDING).select_related(
            "organization", "requested_by"
        ),
        "decided": PendingApproval.objects.exclude(status=ApprovalStatus.PENDING).select_related(
            "organization", "requested_by", "decided_by"
        )[:20],
        "retention_days": settings.EVENT_RAW_RETENTION_DAYS,
        "threshold_form": extra.pop("threshold_form", None) or ThresholdForm(),
        "export_form": extra.pop("export_form", None) or CustomerForm(prefix="export"),
        "erase_form": extra.pop("erase_form", None) or CustomerForm(prefix="erase"),
        **extra,
    }
    return render(request, "adminpanel/compliance.html", context, status=status)


@require_GET
def dashboard(request):
    return _page(request)


class RunForm(forms.Form):
    checks = forms.ChoiceField(choices=[("all", "All")] + [(c.key, c.title) for c in compliance.CHECKS])


@require_POST
def run_checks(request):
    _allowed(request, "adminpanel.change_compliancecheck")
    form = RunForm(request.POST)
    if not form.is_valid():
        return _refused(request, "Run the checks", form)
    which = form.cleaned_data["checks"]
    stored = compliance.compliance_run(keys=None if which == "all" else [which])
    failed = [row.key for row in stored if not row.passed]
    messages.success(request, f"{len(stored)} checks run: {len(failed)} failed.")
    return redirect("adminpanel:compliance")


def _confirm(request, *, action: str, title: str, form, effect, run, organization=None):
    """The two POSTs of a compliance action (views.confirm_two_posts): `run()` returns the
    response; a refusal is a 400 page that says nothing was done."""
    page = {"title": title, "form": form, "organization": organization, "section": "compliance"}
    return confirm_two_posts(
        request,
        action=action,
        form=form,
        effect=effect,
        run=run,
        refused=lambda message: _refused(request, title, form, message),
        confirm_page=lambda shown: render(request, "adminpanel/compliance_confirm.html", {**page, **shown}),
    )


def _refused(request, title: str, form, message: str = ""):
    context = {"title": title, "form": form, "error": message, "section": "compliance"}
    return render(request, "adminpanel/compliance_refused.html", context, status=400)


@require_POST
def threshold_set(request):
    _allowed(request, "adminpanel.change_approvalthreshold")
    form = ThresholdForm(request.POST)

    def effect():
        currency, amount = form.cleaned_data["currency"], form.cleaned_data["amount"]
        before = compliance.approval_threshold_get(currency)
        return [
            ("Currency", currency),
            (
                "Second approver above",
                f"{_money(before, currency) if before is not None else 'none'} → {_money(amount, currency)}",
            ),
        ]

    def run():
        with audit_actor(request.user), transaction.atomic():
            ApprovalThreshold.objects.update_or_create(
                currency=form.cleaned_data["currency"], defaults={"amount": form.cleaned_data["amount"]}
            )
        messages.success(request, "Threshold set.")
        return redirect("adminpanel:compliance")

    return _confirm(request, action="threshold", title="Set an approval threshold", form=form, effect=effect, run=run)


def _approval(pk: int) -> PendingApproval:
    approval = PendingApproval.objects.select_related("organization", "requested_by").filter(pk=pk).first()
    if approval is None:
        raise Http404("No such approval.")
    return approval


def approval_effect(approval: PendingApproval) -> list[tuple[str, str]]:
    params = approval.params
    shown = [
        ("Organization", f"{approval.organization.name} ({approval.organization.external_id})"),
        ("Action", approval.get_kind_display()),
        ("Amount", _money(approval.amount, approval.currency)),
        ("Requested by", f"{approval.requested_by.email} at {approval.requested_at:%Y-%m-%d %H:%M} UTC"),
        ("Status", approval.get_status_display()),
    ]
    if approval.kind == ApprovalKind.CREDIT:
        shown += [("Credit kind", params["kind"]), ("Description", params.get("description") or "—")]
    else:
        payment = Payment.objects.select_related("invoice").get(pk=params["payment"])
        shown += [("Payment", f"{payment.invoice.number} attempt {payment.number}"), ("Reason", params["reason"])]
    return shown


def _decide(request, pk: int, *, approve: bool):
    # Billing writers only reach the approval; the action's own permission is checked on it.
    _allowed(request, "billing.add_creditentry")
    approval = _approval(pk)
    _allowed(request, APPROVAL_PERMS[approval.kind])
    form = DecisionForm(request.POST)

    def effect():
        if approval.status != ApprovalStatus.PENDING:
            raise DomainError(f"This approval is {approval.status} already.", code="approval_decided")
        if approval.requested_by_id == request.user.pk:
            raise DomainError("A second staff user must decide: you requested it.", code="same_approver")
        return approval_effect(approval)

    def run():
        # Claimed first, in its own transaction: payment_refund runs its own durable transaction
        # (it calls the gateway after commit), so it cannot be nested in ours. A refusal by the
        # service puts the request back to pending (both audited); a concurrent second decision
        # finds it claimed.
        with audit_actor(request.user), transaction.atomic():
            locked = PendingApproval.objects.select_for_update().get(pk=approval.pk)
            if locked.status != ApprovalStatus.PENDING:
                raise DomainError(f"This approval is {locked.status} already.", code="approval_decided")
            locked.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
            locked.decided_by, locked.decided_at = request.user, timezone.now()
            locked.save()
        if approve:
            try:
                approval_execute(locked, actor=request.user)
            except DomainError:
                with audit_actor(request.user), transaction.atomic():
                    locked.status, locked.decided_by, locked.decided_at = ApprovalStatus.PENDING, None, None
                    locked.save()
                raise
        messages.success(request, "Approved and done." if approve else "Rejected: nothing was done.")
        return redirect("adminpanel:compliance")

    title = "Approve" if approve else "Reject"
    return _confirm(
        request,
        action=f"{'approve' if approve else 'reject'}:{approval.pk}",
        title=f"{title}: {approval.get_kind_display().lower()}",
        form=form,
        effect=effect,
        run=run,
        organization=approval.organization,
    )


def approval_execute(approval: PendingApproval, *, actor) -> None:
    """What was requested, through its service, with the approver as the audit actor."""
    params, organization = approval.params, approval.organization
    if approval.kind == ApprovalKind.CREDIT:
        expires_at = params.get("expires_at")
        credit_grant(
            actor=actor,
            organization=organization,
            amount=approval.amount,
            currency=approval.currency,
            kind=params["kind"],
            expires_at=datetime.fromisoformat(expires_at) if expires_at else None,
            description=params.get("description", ""),
        )
    else:
        payment = Payment.objects.select_related("invoice").get(pk=params["payment"])
        amount = Decimal(params["amount"]) if params.get("amount") else None
        payment_refund_request(actor, payment, params["reason"], amount)


@require_POST
def approval_approve(request, pk: int):
    return _decide(request, pk, approve=True)


@require_POST
def approval_reject(request, pk: int):
    return _decide(request, pk, approve=False)


@require_POST
def gdpr_export(request):
    _allowed(request, "billing.change_organization")
    form = CustomerForm(request.POST, prefix="export")

    def effect():
        organization = form.organization
        return [
            ("Organization", f"{organization.name} ({organization.external_id})"),
            ("People", str(organization.memberships.count() + (1 if organization.billing_email else 0))),
            ("Invoices", str(Invoice.objects.filter(organization=organization).count())),
            ("Payments", str(Payment.objects.filter(organization=organization).count())),
            ("Files", "organization.json, people.csv, invoices.csv, payments.csv, usage.csv"),
        ]

    def run():
        organization = form.organization
        with audit_actor(request.user):
            data = compliance.gdpr_export(organization, usage=organization_usage_days)
            audit_event(organization, event="gdpr.exported", size=len(data))
        response = HttpResponse(data, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{organization.external_id}-personal-data.zip"'
        return response

    return _confirm(request, action="gdpr_export", title="Export personal data", form=form, effect=effect, run=run)


@require_POST
def gdpr_erase(request):
    _allowed(request, "billing.delete_organization")
    form = CustomerForm(request.POST, prefix="erase")

    def effect():
        organization = form.organization
        erased, kept = compliance.erasable_people(organization)
        return [
            ("Organization", f"{organization.name} ({organization.external_id})"),
            ("People pseudonymized", ", ".join(sorted(erased.values_list("email", flat=True))) or "none"),
            ("Kept (staff or another customer's), membership removed", str(kept.count())),
            ("Billing contact email cleared", organization.billing_email or "none set"),
            ("Invoices kept as issued", str(Invoice.objects.filter(organization=organization).count())),
        ]

    def run():
        done = compliance.gdpr_erase(actor=request.user, organization=form.organization)
        messages.success(request, f"Erased: {done['erased']} people pseudonymized.")
        return redirect("adminpanel:compliance")

    return _confirm(request, action="gdpr_erase", title="Erase personal data", form=form, effect=effect, run=run)
