"""The portal's payment pages: saved payment methods and pay-now (issue 11's surfaces, issue 13
flows 2 and 6).

Card details are typed only into the gateway's own element (Stripe.js, loaded from
`STRIPE_JS_URL` with the tenant's publishable key): the browser confirms a SetupIntent with the
gateway directly, and only the setup's id (`seti_...`) ever reaches these views, which then ask
the gateway what it saved and for whom. No form here has a card
field (PCI DSS SAQ-A).

A PayPal wallet is saved on PayPal's own approval page: "Add PayPal" starts a vault setup token
and sends the browser there; PayPal sends it back to `paypal/return/` with the token's id (only
the approval this organization started is accepted) or to `paypal/cancel/`.

Looking is for every member; changing anything (methods, collection, paying) is for members with
billing rights (owner, admin, billing), checked on every POST. POSTs go through Django's CSRF
middleware (the page's scripts send the token), and every change is audited by the services."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.models import MemberRole, Membership
from core.errors import DomainError
from invoicing.models import InvoiceStatus
from invoicing.selectors.settings import invoicing_settings_get
from payments.gateways import gateway_settings_get
from payments.gateways.base import FailureCode, GatewayDown, GatewayError, MethodType
from payments.models import CollectionMethod, Payment, PaymentCustomer, PaymentStatus
from payments.services.collection import invoice_pay, payment_action_get, payment_refresh
from payments.services.methods import (
    collection_method_set,
    payment_method_default_set,
    payment_method_from_setup,
    payment_method_remove,
    payment_method_setup_start,
    payment_methods_list,
    paypal_approval_cancel,
    paypal_approval_finish,
    paypal_approval_start,
)
from portal import selectors
from portal.models import PortalSettings

BILLING_ROLES = frozenset({MemberRole.OWNER, MemberRole.ADMIN, MemberRole.BILLING})
# What the gateway's element may save from these pages (each typed into the gateway's own UI).
SETUP_TYPES = frozenset({MethodType.CARD, MethodType.SEPA_DEBIT, MethodType.US_BANK_ACCOUNT})
METHOD_NAMES = {
    MethodType.CARD: "card payment",
    MethodType.SEPA_DEBIT: "SEPA Direct Debit",
    MethodType.US_BANK_ACCOUNT: "ACH bank debit",
}
ADDED = {
    MethodType.CARD: "Card added",
    MethodType.SEPA_DEBIT: "SEPA Direct Debit mandate saved",
    MethodType.US_BANK_ACCOUNT: "Bank account added",
    MethodType.PAYPAL: "PayPal added",
}

# What a customer reads for each normalized failure: what happened and what to do.
FAILURE_MESSAGES = {
    FailureCode.HARD_DECLINE: "Your card was declined and cannot be used for this payment. Please use another card.",
    FailureCode.SOFT_DECLINE: "Your card was declined. Please try again later or use another card.",
    FailureCode.INSUFFICIENT_FUNDS: "Your card has insufficient funds. Please use another card.",
    FailureCode.EXPIRED_CARD: "Your card has expired. Please add a current card.",
    FailureCode.AUTHENTICATION_REQUIRED: "Your bank asked for authentication, which did not complete. "
    "Please try again.",
    FailureCode.PROCESSING_ERROR: "The payment could not be processed. Please try again in a few minutes.",
    FailureCode.GATEWAY_DOWN: "The payment service is not reachable right now. Please try again in a few minutes.",
}


def _context(request, external_id: str, section: str) -> dict:
    organization, organizations = selectors.portal_organization_get(user=request.user, external_id=external_id)
    role = (
        Membership.objects.filter(user=request.user, organization=organization).values_list("role", flat=True).first()
    )
    return {
        "organization": organization,
        "organizations": organizations,
        "section": section,
        "can_pay": role in BILLING_ROLES,
    }


def _billing_context(request, external_id: str, section: str) -> dict:
    context = _context(request, external_id, section)
    if not context["can_pay"]:
        raise PermissionDenied("Only members with billing rights can change payments.")
    return context


def _gateway_context() -> dict:
    """What the page needs to load the gateway's element: configuration and the tenant's settings."""
    row = gateway_settings_get()
    return {
        "gateway_ready": row.stripe_ready and bool(row.stripe_publishable_key),
        "paypal_ready": row.paypal_ready,
        "stripe_js_url": settings.STRIPE_JS_URL,
        "publishable_key": row.stripe_publishable_key,
        # Named in the SEPA mandate the customer accepts (the creditor, with Stripe).
        "seller_name": invoicing_settings_get().seller_name or getattr(connection.tenant, "name", ""),
    }


def failure_message(code: str) -> str:
    try:
        return FAILURE_MESSAGES[FailureCode(code)]
    except ValueError:
        return FAILURE_MESSAGES[FailureCode.PROCESSING_ERROR]


# --- payment methods ----------------------------------------------------------------------------


@login_required
@require_GET
def payment_methods(request, external_id: str):
    context = _context(request, external_id, "payment_methods")
    context.update(_gateway_context())
    payer, methods, unavailable = None, [], False
    if context["gateway_ready"] or context["paypal_ready"]:
        try:
            payer, methods = payment_methods_list(organization=context["organization"])
        except GatewayError:
            unavailable = True
    else:
        payer = PaymentCustomer.objects.filter(organization=context["organization"]).first()
    context.update(
        {
            "payer": payer,
            "methods": methods,
            "unavailable": unavailable,
            "default_id": payer.default_payment_method_id if payer else "",
            "collection_method": payer.collection_method if payer else CollectionMethod.AUTOMATIC,
            "collection_choices": CollectionMethod.choices,
            "may_choose_collection": PortalSettings.current().customers_choose_collection,
        }
    )
    return render(request, "portal/payment_methods.html", context)


@login_required
@require_POST
def payment_method_setup(request, external_id: str):
    """A SetupIntent's client secret for the gateway's element (JSON for the page's script)."""
    context = _billing_context(request, external_id, "payment_methods")
    kind = request.POST.get("type", "card")
    if kind not in SETUP_TYPES:
        return JsonResponse(
            {"error": {"code": "invalid_method_type", "message": f"type must be one of {sorted(SETUP_TYPES)}."}},
            status=400,
        )
    try:
        session = payment_method_setup_start(organization=context["organization"], method_types=[kind])
    except GatewayError:
        return JsonResponse(
            {"error": {"code": "gateway_unavailable", "message": FAILURE_MESSAGES[FailureCode.GATEWAY_DOWN]}},
            status=503,
        )
    return JsonResponse({"client_secret": session.client_secret})


def _method_action(request, external_id: str, action) -> None:
    context = _billing_context(request, external_id, "payment_methods")
    method_id = request.POST.get("method", "")
    try:
        action(organization=context["organization"], method_id=method_id)
    except DomainError as error:
        messages.error(request, str(error))
    except GatewayError:
        messages.error(request, FAILURE_MESSAGES[FailureCode.GATEWAY_DOWN])


@login_required
@require_POST
def payment_method_default(request, external_id: str):
    def make_default(*, organization, method_id):
        payer = payment_method_default_set(actor=request.user, organization=organization, payment_method_id=method_id)
        messages.success(request, f"{payer.default_method_label} is now your default payment method.")

    _method_action(request, external_id, make_default)
    return redirect("portal:payment_methods", external_id=external_id)


@login_required
@require_POST
def payment_method_added(request, external_id: str):
    """After the element saved a card (the browser reports the setup's id, the gateway says what
    was saved): it becomes the default when there is none yet."""
    context = _billing_context(request, external_id, "payment_methods")
    organization = context["organization"]
    try:
        method = payment_method_from_setup(organization=organization, setup_id=request.POST.get("setup", ""))
        _added(request, organization, method)
    except DomainError as error:
        messages.error(request, str(error))
    except GatewayError:
        messages.error(request, FAILURE_MESSAGES[FailureCode.GATEWAY_DOWN])
    return redirect("portal:payment_methods", external_id=external_id)


def _added(request, organization, method) -> None:
    """The method just saved becomes the default when there is none yet."""
    added = ADDED.get(str(method.type), "Payment method added")
    payer = PaymentCustomer.objects.filter(organization=organization).first()
    if payer is None or not payer.default_payment_method_id:
        payer = payment_method_default_set(actor=request.user, organization=organization, payment_method_id=method.id)
        messages.success(request, f"{added}: {payer.default_method_label}, now your default payment method.")
    else:
        messages.success(request, f"{added}: {method.label}.")


@login_required
@require_POST
def paypal_start(request, external_id: str):
    """Start a PayPal approval and send the browser to PayPal's page."""
    context = _billing_context(request, external_id, "payment_methods")
    back = {"external_id": external_id}
    try:
        approve_url = paypal_approval_start(
            organization=context["organization"],
            return_url=request.build_absolute_uri(reverse("portal:paypal_return", kwargs=back)),
            cancel_url=request.build_absolute_uri(reverse("portal:paypal_cancel", kwargs=back)),
        )
    except GatewayError:
        messages.error(request, "PayPal is not reachable right now. Please try again in a few minutes.")
        return redirect("portal:payment_methods", external_id=external_id)
    return redirect(approve_url)


@login_required
@require_GET
def paypal_return(request, external_id: str):
    """PayPal's return after the payer approved: `approval_token_id` names the setup token, which
    must be the one this organization started (the service checks); it becomes the wallet."""
    context = _billing_context(request, external_id, "payment_methods")
    organization = context["organization"]
    try:
        method = paypal_approval_finish(
            actor=request.user, organization=organization, setup_token_id=request.GET.get("approval_token_id", "")
        )
        _added(request, organization, method)
    except DomainError:
        messages.error(request, "PayPal was not added: the approval did not complete. Please try again.")
    except GatewayError:
        messages.error(request, "PayPal is not reachable right now. Please try again in a few minutes.")
    return redirect("portal:payment_methods", external_id=external_id)


@login_required
@require_GET
def paypal_cancel(request, external_id: str):
    context = _billing_context(request, external_id, "payment_methods")
    paypal_approval_cancel(organization=context["organization"])
    messages.info(request, "You cancelled at PayPal: no PayPal account was added.")
    return redirect("portal:payment_methods", external_id=external_id)


@login_required
@require_POST
def payment_method_delete(request, external_id: str):
    def remove(*, organization, method_id):
        payment_method_remove(actor=request.user, organization=organization, payment_method_id=method_id)
        messages.success(request, "Payment method removed.")

    _method_action(request, external_id, remove)
    return redirect("portal:payment_methods", external_id=external_id)


@login_required
@require_POST
def collection_method(request, external_id: str):
    context = _billing_context(request, external_id, "payment_methods")
    if not PortalSettings.current().customers_choose_collection:
        raise PermissionDenied("The seller sets how invoices are collected.")
    try:
        collection_method_set(
            actor=request.user, organization=context["organization"], method=request.POST.get("collection_method", "")
        )
    except DomainError:
        messages.error(request, "Choose automatic or manual collection.")
    else:
        messages.success(request, "Collection preference saved.")
    return redirect("portal:payment_methods", external_id=external_id)


# --- pay now ------------------------------------------------------------------------------------


def _open_invoice(organization, invoice_id: int):
    # The organization's finalized invoices only (a draft or another's is a 404).
    return selectors.invoice_for_download_get(organization=organization, invoice_id=invoice_id)


@login_required
@require_http_methods(["GET", "POST"])
def invoice_pay_now(request, external_id: str, invoice_id: int):
    """GET: the amount due with the ways to pay it (the default method, or a new card through the
    gateway's element). POST `method` = "default" or the id of a method just saved: charge it
    through payments' service and show the outcome."""
    context = _billing_context(request, external_id, "billing")
    invoice = _open_invoice(context["organization"], invoice_id)
    if request.method == "POST":
        # `setup`: a card the element just saved; `method`: "default" or a saved method's id.
        method = request.POST.get("method", "")
        try:
            if request.POST.get("setup"):
                saved = payment_method_from_setup(organization=context["organization"], setup_id=request.POST["setup"])
                method = saved.id
            payment = invoice_pay(
                actor=request.user, invoice=invoice, payment_method_id="" if method == "default" else method
            )
        except DomainError as error:
            messages.error(request, str(error))
            return redirect("portal:invoice_pay", external_id=external_id, invoice_id=invoice.pk)
        except GatewayDown:
            messages.error(request, FAILURE_MESSAGES[FailureCode.GATEWAY_DOWN])
            return redirect("portal:invoice_pay", external_id=external_id, invoice_id=invoice.pk)
        return _outcome(request, external_id, invoice, payment)
    payer = PaymentCustomer.objects.filter(organization=context["organization"]).first()
    payment = None
    action_secret = ""
    if request.GET.get("payment", "").isdigit():
        payment = Payment.objects.filter(pk=int(request.GET["payment"]), invoice=invoice).first()
        if payment is None:
            raise Http404("No such payment.")
        if payment.status == PaymentStatus.REQUIRES_ACTION:
            try:
                action_secret = payment_action_get(payment=payment).client_secret
            except GatewayError:
                messages.error(request, FAILURE_MESSAGES[FailureCode.GATEWAY_DOWN])
    # A debit in flight (SEPA, ACH) takes days to settle: the page says so rather than offering
    # to pay again (paying again would only answer the same payment; invoice_pay).
    processing = Payment.objects.filter(invoice=invoice, status=PaymentStatus.PROCESSING).order_by("-number").first()
    context.update(_gateway_context())
    context.update(
        {
            "invoice": invoice,
            "processing": processing,
            "processing_kind": METHOD_NAMES.get(processing.method_type, "payment") if processing else "",
            "is_open": invoice.status == InvoiceStatus.OPEN and invoice.amount_due > 0,
            "default_label": payer.default_method_label if payer and payer.default_payment_method_id else "",
            "payment": payment,
            "action_secret": action_secret,
        }
    )
    return render(request, "portal/pay.html", context)


def _outcome(request, external_id: str, invoice, payment: Payment):
    if payment.status == PaymentStatus.SUCCEEDED:
        messages.success(request, f"Thank you: invoice {invoice.number} is paid.")
        return redirect("portal:billing", external_id=external_id)
    if payment.status == PaymentStatus.PROCESSING:
        messages.info(
            request,
            f"Your payment of invoice {invoice.number} is processing: a bank debit takes a few business days "
            "to confirm. The invoice stays open until then; we will email you.",
        )
        return redirect("portal:billing", external_id=external_id)
    if payment.status in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.PENDING):
        url = reverse("portal:invoice_pay", kwargs={"external_id": external_id, "invoice_id": invoice.pk})
        return redirect(f"{url}?payment={payment.pk}")
    messages.error(request, failure_message(payment.failure_code))
    return redirect("portal:invoice_pay", external_id=external_id, invoice_id=invoice.pk)


@login_required
@require_POST
def payment_refreshed(request, external_id: str, invoice_id: int, payment_id: int):
    """The browser finished (or gave up) the gateway's authentication: ask the gateway, record."""
    context = _billing_context(request, external_id, "billing")
    invoice = _open_invoice(context["organization"], invoice_id)
    payment = Payment.objects.filter(pk=payment_id, invoice=invoice).first()
    if payment is None:
        raise Http404("No such payment.")
    try:
        payment = payment_refresh(payment_id=payment.pk)
    except GatewayError:
        messages.error(request, FAILURE_MESSAGES[FailureCode.GATEWAY_DOWN])
        return redirect("portal:invoice_pay", external_id=external_id, invoice_id=invoice.pk)
    return _outcome(request, external_id, invoice, payment)
