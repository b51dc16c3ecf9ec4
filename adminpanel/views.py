"""The staff pages (issue 14): the overview, customer 360 (search, one page per organization and
its actions) and the audit log.

accounts.middleware.StaffAccessMiddleware admits only staff who passed their second factor; each
action then asks the staff role for the Django permission of what it changes (accounts.backends)
and runs through the domain services, which lock, validate and audit with the signed-in user as
actor. Every action is two POSTs: the first shows its money effect (a plan change's bill from
billing's preview, a credit note's figures, a grant's new balance) and a fingerprint of it; the
second, carrying that fingerprint, does it. If the effect changed in between (a price, a payment),
it is shown again instead of being done."""

from __future__ import annotations

import csv
import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import audit_actor, audit_event
from adminpanel import forms
from adminpanel.compliance import approval_needed
from adminpanel.models import ApprovalKind, PendingApproval, StaffNote
from adminpanel.selectors import (
    audit_entries_list,
    changes_text,
    dunning_accounts_list,
    dunning_overview_get,
    organization_360_get,
    organization_search,
    organization_usage_days,
    staff_overview_get,
)
from billing.models import Organization
from billing.models.organization import EXTERNAL_ID
from billing.selectors.bill import bill_get
from billing.selectors.credit import credit_balance_get
from billing.selectors.subscription_state import subscription_state_get
from billing.services.coupon import coupon_redeem
from billing.services.credit import credit_grant, credit_grant_check
from billing.services.organization import organization_close
from billing.services.subscription import subscription_change_plan, subscription_create
from billing.templatetags.money import money
from core.errors import DomainError
from core.money import Money
from dunning.models import DunningAccount
from dunning.services.staff import dunning_pause, dunning_retry_now, dunning_write_off, organization_suspend
from invoicing.models import Invoice, InvoiceStatus
from invoicing.services.invoice import CreditNoteLineInput, credit_note_create
from invoicing.services.one_off import invoice_one_off_create, one_off_draft
from payments.models import CollectionMethod, PaymentCustomer
from payments.services.refunds import RefundInput, payment_refund, refund_lines

SEARCH_PAGE = 25
AUDIT_PAGE = 50


@require_GET
def home(request):
    return render(request, "adminpanel/home.html", {"overview": staff_overview_get(), "section": "home"})


@require_GET
def organizations(request):
    form = forms.SearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    page = Paginator(organization_search(query), SEARCH_PAGE).get_page(request.GET.get("page"))
    return render(
        request, "adminpanel/organizations.html", {"form": form, "page": page, "q": query, "section": "customers"}
    )


def _organization(external_id: str) -> Organization:
    # A path that cannot be a customer ID (a NUL byte, which PostgreSQL refuses) is not found.
    try:
        EXTERNAL_ID(external_id)
    except ValidationError:
        raise Http404("No such organization.") from None
    return get_object_or_404(Organization, external_id=external_id)


def _action_forms(organization: Organization) -> dict:
    return {
        "subscription_form": forms.SubscriptionCreateForm(organization=organization),
        "change_form": forms.PlanChangeForm(organization=organization),
        "credit_form": forms.CreditGrantForm(organization=organization),
        "credit_note_form": forms.CreditNoteForm(organization=organization),
        "coupon_form": forms.CouponForm(organization=organization),
        "refund_form": forms.RefundForm(organization=organization),
        "one_off_form": forms.OneOffChargeForm(organization=organization),
        "close_form": forms.CloseForm(organization=organization),
        "note_form": forms.NoteForm(organization=organization),
        "dunning_pause_form": forms.DunningPauseForm(organization=organization),
        "dunning_invoice_form": forms.DunningInvoiceForm(organization=organization),
        "suspend_form": forms.SuspendForm(organization=organization),
    }


def _page_context(request, organization: Organization) -> dict:
    return {
        "organization": organization,
        "c": organization_360_get(organization),
        "usage": organization_usage_days(organization),
        "section": "customers",
        **_action_forms(organization),
    }


@require_GET
def organization(request, external_id: str):
    return render(request, "adminpanel/organization.html", _page_context(request, _organization(external_id)))


def _allowed(request, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied("Your staff role may not do this.")


def _fingerprint(action: str, form, effect: list[tuple[str, str]]) -> str:
    shown = repr([action, sorted((k, str(v)) for k, v in form.cleaned_data.items()), effect])
    return hashlib.sha256(shown.encode()).hexdigest()


def _refused(request, organization: Organization, title: str, form, message: str = ""):
    """The action's form again with what is wrong (400): nothing was written."""
    context = {"organization": organization, "title": title, "form": form, "error": message, "section": "customers"}
    return render(request, "adminpanel/action_refused.html", context, status=400)


def confirm_two_posts(request, *, action: str, form, effect, run, refused, confirm_page):
    """The two POSTs of every staff action (customer 360's, dunning's and the compliance page's):
    `effect()` (label, value) pairs shown with a fingerprint by `confirm_page(context)`; `run()`,
    which returns the response, done when the POST carries the fingerprint of exactly what was
    shown. A refusal by the form or a service (DomainError) is `refused(message)`: nothing done."""
    if not form.is_valid():
        return refused("")
    try:
        shown = effect()
        fingerprint = _fingerprint(action, form, shown)
        confirm = request.POST.get("confirm", "")
        if confirm == fingerprint:
            return run()
    except DomainError as exc:
        return refused(exc.message)
    return confirm_page({"effect": shown, "fingerprint": fingerprint, "changed": bool(confirm)})


def _posted(request, external_id: str, *, perm: str, form_class) -> tuple[Organization, forms.OrganizationForm]:
    """An action's POST: the role's permission first (a refused role learns nothing of the
    organization), then the organization and the bound form."""
    _allowed(request, perm)
    organization = _organization(external_id)
    return organization, form_class(request.POST, organization=organization)


def _two_step(request, organization: Organization, *, action: str, title: str, form, effect, run, done: str):
    """A customer 360 action (confirm_two_posts): once done, back to the organization page with
    `done` (or the text `run()` returns instead: a request waiting for a second approver)."""

    def do():
        said = run()
        messages.success(request, said if isinstance(said, str) else done)
        return redirect("adminpanel:organization", external_id=organization.external_id)

    page = {"organization": organization, "title": title, "form": form, "section": "customers"}
    return confirm_two_posts(
        request,
        action=action,
        form=form,
        effect=effect,
        run=do,
        refused=lambda message: _refused(request, organization, title, form, message),
        confirm_page=lambda shown: render(request, "adminpanel/confirm.html", {**page, **shown}),
    )


def _money(amount: Decimal, currency: str) -> str:
    return money(amount, currency)


def _when(instant: datetime, organization: Organization) -> str:
    """An instant as the organization reads it, with its zone's abbreviation."""
    return instant.astimezone(ZoneInfo(organization.timezone)).strftime("%-d %b %Y %H:%M %Z")


@require_POST
def subscription_add(request, external_id: str):
    organization, form = _posted(
        request, external_id, perm="billing.add_subscription", form_class=forms.SubscriptionCreateForm
    )

    def create():
        return subscription_create(
            actor=request.user,
            organization=organization,
            plan_version=form.cleaned_data["plan_version"],
            billing_mode=form.cleaned_data["billing_mode"],
            start_at=form.start_at(),
        )

    def effect():
        # The first bill as the billing run will make it (the first period's in-advance fee,
        # prorated): the subscription is created, billed in memory, and rolled back.
        # The live subscriptions are part of what is shown, so a second POST of the same confirm
        # (a double click) finds the effect changed and shows it again instead of subscribing twice.
        live = organization.subscriptions.filter(status__in=forms.LIVE).count()

        def make():
            subscription = create()
            plan = subscription.plan_version.plan
            bill = bill_get(subscription_state_get(subscription), subscription.started_at)
            shown = [
                ("Live subscriptions before", str(live)),
                ("Plan", f"{plan.name} ({plan.code} v{subscription.plan_version.version})"),
                ("Base fee", f"{_money(subscription.plan_version.base_fee, plan.currency)} per {plan.interval}"),
                ("Status", subscription.get_status_display()),
                (
                    "First period",
                    f"{_when(subscription.started_at, organization)} to "
                    f"{_when(subscription.current_period_end, organization)}",
                ),
            ]
            if subscription.trial_end:
                shown.append(("Trial ends", _when(subscription.trial_end, organization)))
            shown += [(line.description, _money(line.amount.amount, line.amount.currency)) for line in bill.lines]
            shown.append(("First bill, before tax", _money(bill.subtotal.amount, bill.subtotal.currency)))
            return shown

        return _previewed(make)

    return _two_step(
        request,
        organization,
        action="subscribe",
        title="Create a subscription",
        form=form,
        effect=effect,
        run=create,
        done="Subscription created.",
    )


@require_POST
def plan_change(request, external_id: str):
    organization, form = _posted(
        request, external_id, perm="billing.change_subscription", form_class=forms.PlanChangeForm
    )

    def change(preview: bool):
        return subscription_change_plan(
            actor=request.user,
            subscription=form.cleaned_data["subscription"],
            plan_version=form.cleaned_data["plan_version"],
            timing=form.cleaned_data["timing"] or None,
            preview=preview,
        )

    def effect():
        preview = change(True)
        shown = [
            ("Change", f"{preview.kind} to {form.cleaned_data['plan_version'].plan.name}"),
            ("Effective", _when(preview.effective_at, organization)),
        ]
        shown += [(line.description, _money(line.amount.amount, line.amount.currency)) for line in preview.bill.lines]
        subtotal = preview.bill.subtotal
        shown.append(("Bill at the change, before tax", _money(subtotal.amount, subtotal.currency)))
        return shown

    return _two_step(
        request,
        organization,
        action="change",
        title="Change plan",
        form=form,
        effect=effect,
        run=lambda: change(False),
        done="Plan changed.",
    )


def _second_approver(organization, kind, amount: Decimal, currency: str) -> list[tuple[str, str]]:
    """The effect's lines saying the action waits for a second staff user (adminpanel.compliance).
    The requests already pending are part of it, so a double click is shown again, not requested twice."""
    threshold = approval_needed(amount, currency)
    if threshold is None:
        return []
    pending = PendingApproval.objects.filter(organization=organization, kind=kind, status="pending").count()
    return [
        ("Second approver", f"required above {_money(threshold, currency)}: this creates a pending approval"),
        ("Already pending for this organization", str(pending)),
    ]


def _approval_request(request, organization, kind, amount: Decimal, params: dict, currency: str | None = None):
    """Above the currency's threshold the action is only requested: a different staff user approves
    it on the compliance page, which then does it through the same service."""
    with audit_actor(request.user), transaction.atomic():
        PendingApproval.objects.create(
            organization=organization,
            kind=kind,
            amount=amount,
            currency=currency or organization.currency,
            params=params,
            requested_by=request.user,
        )
    return "Above the approval threshold: waiting for a second staff user's approval."


@require_POST
def credit_add(request, external_id: str):
    organization, form = _posted(request, external_id, perm="billing.add_creditentry", form_class=forms.CreditGrantForm)

    def effect():
        amount, expires_at = form.cleaned_data["amount"], form.expires_at()
        credit_grant_check(
            organization=organization,
            amount=amount,
            currency=organization.currency,
            kind=form.cleaned_data["kind"],
            expires_at=expires_at,
            at=timezone.now(),
        )
        balance = credit_balance_get(organization=organization)
        after = balance + Money(amount, organization.currency)
        shown = [
            ("Credit granted", _money(amount, organization.currency)),
            ("Balance", f"{_money(balance.amount, balance.currency)} → {_money(after.amount, after.currency)}"),
            ("Expires", _when(expires_at, organization) if expires_at else "never"),
        ]
        return shown + _second_approver(organization, ApprovalKind.CREDIT, amount, organization.currency)

    def run():
        amount = form.cleaned_data["amount"]
        if approval_needed(amount, organization.currency) is not None:
            expires_at = form.expires_at()
            params = {"kind": form.cleaned_data["kind"], "description": form.cleaned_data["description"]}
            params["expires_at"] = expires_at.isoformat() if expires_at else None
            return _approval_request(request, organization, ApprovalKind.CREDIT, amount, params)
        credit_grant(
            actor=request.user,
            organization=organization,
            amount=form.cleaned_data["amount"],
            currency=organization.currency,
            kind=form.cleaned_data["kind"],
            expires_at=form.expires_at(),
            description=form.cleaned_data["description"],
        )

    return _two_step(
        request,
        organization,
        action="credit",
        title="Grant credit",
        form=form,
        effect=effect,
        run=run,
        done="Credit granted.",
    )


class _Rollback(Exception):
    pass


@require_POST
def credit_note_add(request, external_id: str):
    organization, form = _posted(request, external_id, perm="invoicing.add_creditnote", form_class=forms.CreditNoteForm)

    def lines(invoice: Invoice) -> list[CreditNoteLineInput]:
        """The amount against the invoice's first creditable line (the form credits one sum)."""
        line = invoice.lines.exclude(kind="discount").order_by("position").first()
        if line is None:
            raise DomainError("The invoice has no line to credit.", code="lines_required")
        return [CreditNoteLineInput(invoice_line_id=line.pk, amount=form.cleaned_data["amount"])]

    def create():
        invoice = form.cleaned_data["invoice"]
        return credit_note_create(
            actor=request.user, invoice=invoice, reason=form.cleaned_data["reason"], lines=lines(invoice)
        )

    def effect():
        # The note's tax and where its money goes are the service's to compute.
        def make():
            note = create()
            cur = note.currency
            return [
                ("Invoice", str(form.cleaned_data["invoice"].number)),
                ("Net", _money(note.subtotal, cur)),
                ("Tax", _money(note.tax_total, cur)),
                ("Total", _money(note.total, cur)),
                ("Lowers the amount due by", _money(note.applied_to_invoice, cur)),
                ("Credited to the balance", _money(note.credited_to_balance, cur)),
            ]

        return _previewed(make)

    return _two_step(
        request,
        organization,
        action="credit_note",
        title="Issue a credit note",
        form=form,
        effect=effect,
        run=create,
        done="Credit note issued.",
    )


def _previewed(make):
    """What `make()` writes, read back inside a transaction that is then rolled back (its audit
    rows and outbox messages with it): the services' own computation of a money effect, for
    services that have no preview mode of their own."""
    shown = []
    try:
        with transaction.atomic():
            shown = make()
            raise _Rollback
    except _Rollback:
        pass
    return shown


@require_POST
def coupon_apply(request, external_id: str):
    organization, form = _posted(request, external_id, perm="billing.add_couponredemption", form_class=forms.CouponForm)

    def redeem():
        return coupon_redeem(actor=request.user, coupon=form.cleaned_data["coupon"], organization=organization)

    def effect():
        def make():
            redemption = redeem()
            coupon = redemption.coupon
            if coupon.discount_type == "percentage":
                off = f"{coupon.percent_off.normalize():f} % off"
            else:
                off = f"{_money(coupon.amount_off, coupon.currency)} off"
            until = _when(redemption.covers_until, organization) if redemption.covers_until else "it is removed"
            return [
                ("Coupon", f"{coupon.name} ({coupon.code})"),
                ("Discount", f"{off} {coupon.get_applies_to_display().lower()}"),
                ("Subscription", str(redemption.subscription)),
                ("Covers", f"from {_when(redemption.covers_from, organization)} until {until}"),
            ]

        return _previewed(make)

    return _two_step(
        request,
        organization,
        action="coupon",
        title="Apply a coupon",
        form=form,
        effect=effect,
        run=redeem,
        done="Coupon applied.",
    )


@require_POST
def refund(request, external_id: str):
    organization, form = _posted(request, external_id, perm="payments.add_refund", form_class=forms.RefundForm)

    def left_of(payment) -> Decimal:
        return payment.amount - payment.amount_refunded

    def effect():
        payment, asked = form.cleaned_data["payment"], form.cleaned_data["amount"]
        invoice = payment.invoice
        if invoice.status != InvoiceStatus.PAID:
            raise DomainError(f"{invoice} is {invoice.status}: refunds are of paid invoices.", code="invoice_not_paid")
        left = left_of(payment)
        if left <= 0:
            raise DomainError(f"Payment {payment.pk} is refunded in full.", code="amount_exceeds_refundable")

        def make():
            # The note payment_refund makes (the one the refund is linked to), run and rolled
            # back; it pays back what the note puts on the balance, capped by what is left (its
            # default amount: payment_refund is durable, so it cannot run inside this preview).
            note = credit_note_create(
                actor=request.user,
                invoice=invoice,
                reason=form.cleaned_data["reason"],
                lines=refund_lines(invoice, asked),
            )
            cur = note.currency
            back = min(note.credited_to_balance, left)
            return [
                ("Payment", f"{invoice.number} attempt {payment.number}: {_money(payment.amount, cur)}"),
                ("Already refunded", _money(payment.amount_refunded, cur)),
                ("Refund", "in full" if asked is None else f"in part: {_money(asked, cur)} asked"),
                ("Credit note", f"net {_money(note.subtotal, cur)}, tax {_money(note.tax_total, cur)}"),
                ("Credit note total", _money(note.total, cur)),
                ("Paid back to the customer", _money(back, cur)),
                ("Left to refund after", _money(left - back, cur)),
                *_second_approver(organization, ApprovalKind.REFUND, asked or left, cur),
            ]

        return _previewed(make)

    def run():
        payment, asked = form.cleaned_data["payment"], form.cleaned_data["amount"]
        if approval_needed(asked or left_of(payment), payment.currency) is not None:
            params = {"payment": payment.pk, "reason": form.cleaned_data["reason"]}
            if asked is not None:
                params["amount"] = format(asked, "f")
            return _approval_request(
                request, organization, ApprovalKind.REFUND, asked or left_of(payment), params, payment.currency
            )
        payment_refund_request(request.user, payment, form.cleaned_data["reason"], asked)

    return _two_step(
        request,
        organization,
        action="refund",
        title="Refund a payment",
        form=form,
        effect=effect,
        run=run,
        done="Refund made.",
    )


def payment_refund_request(actor, payment, reason: str, amount: Decimal | None):
    """A staff refund through payments' service: in full (`amount` None) or of `amount` (gross),
    with the credit note refund_lines makes of it; the service pays back what the note credits,
    capped by what is left of the payment."""
    return payment_refund(
        actor=actor,
        payment_id=payment.pk,
        refund=RefundInput(reason=reason, lines=tuple(refund_lines(payment.invoice, amount))),
    )


@require_POST
def one_off_charge(request, external_id: str):
    organization, form = _posted(request, external_id, perm="invoicing.add_invoice", form_class=forms.OneOffChargeForm)

    def charge() -> Money:
        return Money(form.cleaned_data["amount"], organization.currency)

    def effect():
        draft = one_off_draft(
            organization=organization, description=form.cleaned_data["description"], amount=charge(), at=timezone.now()
        )
        cur = draft.currency
        balance = credit_balance_get(organization=organization)
        from_credit = min(balance.amount, draft.total.amount)
        due = draft.total.amount - from_credit
        payer = PaymentCustomer.objects.filter(organization=organization).first()
        # as payments' finalized hook decides (collections_enqueue)
        if due == 0:
            collected = "nothing to collect: paid from the credit balance"
        elif payer is not None and payer.collection_method == CollectionMethod.MANUAL:
            collected = "sent: the customer pays from the portal or by transfer"
        elif payer is not None and payer.default_payment_method_id:
            collected = "charged to the default payment method"
        else:
            collected = "no payment method: the customer is asked to pay from the portal"
        line = draft.lines[0]
        tax = "no rate applies"
        if line.tax_rate is not None:
            tax = f"rate {line.tax_rate.normalize():f} % ({line.tax_jurisdiction})"
        # The invoices issued so far are part of what is shown: a second POST of the same confirm
        # (a double click) finds the effect changed and shows it again instead of charging twice.
        return [
            ("Invoices issued so far", str(organization.invoices.exclude(status=InvoiceStatus.DRAFT).count())),
            ("Charge", line.line.description),
            ("Net", _money(draft.subtotal.amount, cur)),
            ("Tax", f"{_money(draft.tax_total.amount, cur)}, {tax}"),
            ("Invoice total", _money(draft.total.amount, cur)),
            ("Paid from the credit balance", _money(from_credit, cur)),
            ("Amount due", _money(due, cur)),
            ("Collection", collected),
        ]

    return _two_step(
        request,
        organization,
        action="one_off",
        title="Charge a one-off amount",
        form=form,
        effect=effect,
        run=lambda: invoice_one_off_create(
            actor=request.user,
            organization=organization,
            description=form.cleaned_data["description"],
            amount=charge(),
        ),
        done="One-off charge invoiced.",
    )


@require_POST
def close(request, external_id: str):
    organization, form = _posted(request, external_id, perm="billing.delete_organization", form_class=forms.CloseForm)

    def effect():
        if organization.status == "closed":
            raise DomainError("The organization is closed already.", code="organization_closed")
        live = organization.subscriptions.filter(status__in=forms.LIVE).count()
        return [
            ("Organization", f"{organization.name} ({organization.external_id})"),
            ("Live subscriptions ended now", str(live)),
            ("Money", "each ended subscription's final bill credits its unused in-advance fee"),
        ]

    return _two_step(
        request,
        organization,
        action="close",
        title="Close the organization",
        form=form,
        effect=effect,
        run=lambda: organization_close(actor=request.user, organization=organization),
        done="Organization closed.",
    )


@require_POST
def note_add(request, external_id: str):
    organization, form = _posted(request, external_id, perm="billing.change_organization", form_class=forms.NoteForm)
    if not form.is_valid():
        return _refused(request, organization, "Add a note", form)
    with audit_actor(request.user), transaction.atomic():
        note = StaffNote.objects.create(organization=organization, author=request.user, body=form.cleaned_data["body"])
        audit_event(organization, event="staff_note.added", note=note.pk)
    messages.success(request, "Note added.")
    return redirect("adminpanel:organization", external_id=organization.external_id)


# --- dunning (issue 12's "Staff") -------------------------------------------------------------

DUNNING_PAGE = 50


@require_GET
def dunning(request):
    page = Paginator(dunning_accounts_list(), DUNNING_PAGE).get_page(request.GET.get("page"))
    return render(
        request, "adminpanel/dunning.html", {"overview": dunning_overview_get(), "page": page, "section": "dunning"}
    )


def _account(organization: Organization) -> DunningAccount:
    return DunningAccount.objects.filter(organization=organization).first() or DunningAccount(organization=organization)


@require_POST
def dunning_pause_set(request, external_id: str):
    organization, form = _posted(
        request, external_id, perm="dunning.change_dunningaccount", form_class=forms.DunningPauseForm
    )

    def effect():
        # The state before is part of what is shown: a second POST of the same confirm finds it
        # changed and shows it again.
        account = _account(organization)
        pause = form.cleaned_data["pause"]
        if account.paused == pause:
            raise DomainError("Dunning is paused already." if pause else "Dunning is not paused.", code="unchanged")
        return [
            ("Dunning", "running → paused" if pause else "paused → running"),
            ("Open cases", str(organization.dunning_cases.filter(closed_at=None).count())),
            (
                "Effect",
                "no retry, email or stage until resumed; the state stays as it is"
                if pause
                else "the next run catches up to the day each case is on",
            ),
        ]

    return _two_step(
        request,
        organization,
        action="dunning_pause",
        title="Pause or resume dunning",
        form=form,
        effect=effect,
        run=lambda: dunning_pause(actor=request.user, organization=organization, paused=form.cleaned_data["pause"]),
        done="Dunning paused." if request.POST.get("pause") == "1" else "Dunning resumed.",
    )


@require_POST
def dunning_retry(request, external_id: str):
    organization, form = _posted(request, external_id, perm="payments.add_payment", form_class=forms.DunningInvoiceForm)

    def effect():
        invoice = form.cleaned_data["invoice"]
        attempts = invoice.payments.count()
        return [
            ("Invoice", f"{invoice.number} ({invoice.dunning_case.get_stage_display()})"),
            ("Charged now", _money(invoice.amount_due, invoice.currency)),
            ("With", "the default payment method (a payment in flight is taken instead of a new one)"),
            ("Attempts so far", str(attempts)),
        ]

    return _two_step(
        request,
        organization,
        action="dunning_retry",
        title="Retry the payment now",
        form=form,
        effect=effect,
        run=lambda: dunning_retry_now(actor=request.user, invoice=form.cleaned_data["invoice"]),
        done="Payment retried.",
    )


@require_POST
def dunning_write_off_view(request, external_id: str):
    organization, form = _posted(
        request, external_id, perm="invoicing.change_invoice", form_class=forms.DunningInvoiceForm
    )

    def effect():
        invoice = form.cleaned_data["invoice"]
        others = organization.dunning_cases.filter(closed_at=None).exclude(invoice=invoice).count()
        return [
            ("Invoice", f"{invoice.number} ({invoice.dunning_case.get_stage_display()})"),
            ("Written off (uncollectible)", _money(invoice.amount_due, invoice.currency)),
            ("Other invoices in dunning", str(others)),
            ("Organization", "active again" if not others else "stays in dunning for the others"),
        ]

    return _two_step(
        request,
        organization,
        action="dunning_write_off",
        title="Write an invoice off",
        form=form,
        effect=effect,
        run=lambda: dunning_write_off(actor=request.user, invoice=form.cleaned_data["invoice"]),
        done="Invoice written off.",
    )


@require_POST
def suspension_set(request, external_id: str):
    organization, form = _posted(
        request, external_id, perm="dunning.change_dunningaccount", form_class=forms.SuspendForm
    )

    def effect():
        account = _account(organization)
        suspend = form.cleaned_data["suspend"]
        if organization.status == "closed":
            raise DomainError("The organization is closed.", code="organization_closed")
        if account.suspended_by_staff == suspend:
            raise DomainError(
                "The organization is suspended by staff already." if suspend else "No suspension by staff to lift.",
                code="suspension_unchanged",
            )
        live = organization.subscriptions.filter(status__in=forms.LIVE).count()
        cases = organization.dunning_cases.filter(closed_at=None).count()
        return [
            ("Organization", f"{organization.get_status_display()} → {'suspended' if suspend else 'by its invoices'}"),
            ("Live subscriptions", str(live)),
            (
                "Effect",
                "usage and plan changes blocked (entitlement serve: false), subscriptions suspended"
                if suspend
                else f"active again, or the dunning state of its {cases} overdue invoice(s)",
            ),
        ]

    return _two_step(
        request,
        organization,
        action="suspend",
        title="Suspend or reactivate",
        form=form,
        effect=effect,
        run=lambda: organization_suspend(
            actor=request.user, organization=organization, suspended=form.cleaned_data["suspend"]
        ),
        done="Organization suspended." if request.POST.get("suspend") == "1" else "Organization reactivated.",
    )


@require_GET
def invoice_pdf(request, pk: int):
    invoice = get_object_or_404(Invoice, pk=pk)
    if not invoice.pdf:
        raise Http404("No PDF stored for this invoice yet.")
    return FileResponse(invoice.pdf.open("rb"), content_type="application/pdf", filename=f"{invoice.number}.pdf")


@require_GET
def audit_log(request):
    form = forms.AuditFilterForm(request.GET)
    entries = audit_entries_list(form.filter()) if form.is_valid() else audit_entries_list(forms.AuditFilter())
    page = Paginator(entries, AUDIT_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "section": "audit"}
    return render(request, "adminpanel/audit_log.html", context, status=200 if form.is_valid() else 400)


CSV_COLUMNS = ["timestamp_utc", "actor", "action", "object_type", "object_id", "object", "changes", "remote_addr"]


@require_GET
def audit_log_csv(request):
    form = forms.AuditFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponse("Invalid filter: " + "; ".join(form.errors), status=400, content_type="text/plain")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for entry in audit_entries_list(form.filter()).iterator(chunk_size=2000):
        writer.writerow(
            [
                entry.timestamp.astimezone(UTC).isoformat(),
                entry.actor_email or (entry.actor.email if entry.actor else "system"),
                entry.get_action_display(),
                f"{entry.content_type.app_label}.{entry.content_type.model}",
                entry.object_pk,
                entry.object_repr,
                changes_text(entry),
                entry.remote_addr or "",
            ]
        )
    return response
