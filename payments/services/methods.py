"""An organization's payer record: its customer at the gateway, its default method (chosen from
what the gateway holds: card and bank details are typed only into the gateway's own UI), and
whether it is collected automatically.

Two gateways hold an organization's methods: Stripe (`payer.gateway`: cards, SEPA, ACH, listed by
asking it) and PayPal (one vaulted wallet, saved through PayPal's approval page and kept on the
payer row, since PayPal lists no tokens by customer). Listing, the default and removal go across
both; each method is charged and removed through its own gateway (`PaymentCustomer.method_gateway`)."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import Q

from accounts.audit import audit_actor, audit_event
from billing.models import Organization
from core.errors import DomainError
from payments.gateways import gateway_get
from payments.gateways.base import GatewayError, MethodType, PaymentMethodInfo, SetupSession
from payments.hooks import method_changed_hooks_run
from payments.models import CollectionMethod, PaymentCustomer


def payer_ensure(*, organization: Organization) -> PaymentCustomer:
    """The payer row with a live gateway customer (made at the gateway when missing or gone)."""
    payer, _ = PaymentCustomer.objects.get_or_create(organization=organization)
    customer_id = gateway_get(payer.gateway).customer_ensure(
        customer_id=payer.gateway_customer_id,
        email=organization.billing_email,
        name=organization.name,
        reference=organization.external_id,
    )
    if customer_id != payer.gateway_customer_id:
        PaymentCustomer.objects.filter(pk=payer.pk).update(gateway_customer_id=customer_id)
        payer.gateway_customer_id = customer_id
    return payer


def payment_method_setup_start(*, organization: Organization, method_types: list[str]) -> SetupSession:
    payer = payer_ensure(organization=organization)
    return gateway_get(payer.gateway).setup_start(customer_id=payer.gateway_customer_id, method_types=method_types)


def payment_method_from_setup(*, organization: Organization, setup_id: str) -> PaymentMethodInfo:
    """The method the gateway's element just saved for this organization (the browser reports
    only the setup's id; the gateway is asked what it saved and for whom)."""
    payer = PaymentCustomer.objects.filter(organization=organization).first()
    if payer is None or not payer.gateway_customer_id or not setup_id:
        raise DomainError("The card was not saved.", code="setup_incomplete")
    try:
        return gateway_get(payer.gateway).setup_method_get(setup_id=setup_id, customer_id=payer.gateway_customer_id)
    except GatewayError as error:
        if error.code == "setup_incomplete":
            raise DomainError("The card was not saved.", code="setup_incomplete") from error
        raise


def _paypal_methods(payer: PaymentCustomer | None) -> list[PaymentMethodInfo]:
    if payer is None or not payer.paypal_token_id:
        return []
    return [PaymentMethodInfo(id=payer.paypal_token_id, type=MethodType.PAYPAL, label=payer.paypal_label or "PayPal")]


def payment_methods_list(*, organization: Organization) -> tuple[PaymentCustomer | None, list[PaymentMethodInfo]]:
    """Stripe's methods (asked at Stripe) and the PayPal wallet (from the payer row)."""
    payer = PaymentCustomer.objects.filter(organization=organization).first()
    if payer is None:
        return payer, []
    methods = []
    if payer.gateway_customer_id:
        methods = gateway_get(payer.gateway).payment_methods_list(customer_id=payer.gateway_customer_id)
    return payer, [*methods, *_paypal_methods(payer)]


def payment_method_default_set(*, actor, organization: Organization, payment_method_id: str) -> PaymentCustomer:
    """Make a method this organization holds at either gateway the default (checked there)."""
    method = payment_method_owned_get(organization=organization, payment_method_id=payment_method_id)
    with audit_actor(actor), transaction.atomic():
        locked = PaymentCustomer.objects.select_for_update().get(organization=organization)
        before = locked.default_method_label
        locked.default_payment_method_id = method.id
        locked.default_method_type = str(method.type)
        locked.default_method_label = method.label[:100]
        locked.default_card_exp_month, locked.default_card_exp_year = card_expiry(method)
        locked.save()
        audit_event(locked, event="payment_method.default_set", method=(before, method.label))
    method_changed_hooks_run(organization.pk)
    return locked


def payment_method_updated(*, method: PaymentMethodInfo) -> bool:
    """The gateway says a saved card changed (Stripe's `payment_method.updated`, and
    `payment_method.automatically_updated` when the card network sent a renewed card): where it is
    an organization's default, its expiry (the card-expiry warnings read it) and label follow. Only
    a later expiry is taken, so an older event applied after a newer one changes nothing. A moved
    expiry counts as an updated method (dunning tries it at once). Whether anything changed."""
    month, year = card_expiry(method)
    if month is None or year is None:
        return False
    later = Q(default_card_exp_year__lt=year) | Q(default_card_exp_year=year, default_card_exp_month__lt=month)
    changed = []
    with transaction.atomic():
        payers = PaymentCustomer.objects.select_for_update().filter(
            Q(default_card_exp_year__isnull=True) | later, default_payment_method_id=method.id
        )
        for payer in payers:
            before = (payer.default_card_exp_month, payer.default_card_exp_year)
            payer.default_card_exp_month, payer.default_card_exp_year = month, year
            payer.default_method_label = method.label[:100]
            payer.save(
                update_fields=["default_card_exp_month", "default_card_exp_year", "default_method_label", "updated_at"]
            )
            audit_event(
                payer, event="payment_method.updated", method=method.label, expiry=(list(before), [month, year])
            )
            changed.append(payer.organization_id)
            # after the commit (a batch of webhooks applies in one transaction): the retry calls
            # the gateway, which must not happen under the batch's locks
            transaction.on_commit(
                lambda organization_id=payer.organization_id: method_changed_hooks_run(organization_id), robust=True
            )
    return bool(changed)


def card_expiry(method: PaymentMethodInfo) -> tuple[int | None, int | None]:
    """A card's (month, year) from the gateway's "MM/YYYY"; (None, None) for other methods, or
    when the gateway did not say."""
    month, _, year = method.expires.partition("/")
    if str(method.type) != MethodType.CARD or not (month.isdigit() and year.isdigit()):
        return None, None
    return int(month), int(year)


def payment_method_owned_get(*, organization: Organization, payment_method_id: str) -> PaymentMethodInfo:
    """A method this organization holds: its PayPal wallet, or one Stripe holds for its customer
    (asked at the gateway: an id from a browser is only a claim), else DomainError
    `unknown_payment_method`."""
    payer = PaymentCustomer.objects.filter(organization=organization).first()
    if payer is not None and payment_method_id:
        for method in _paypal_methods(payer):
            if method.id == payment_method_id:
                return method
        if payer.gateway_customer_id:
            for method in gateway_get(payer.gateway).payment_methods_list(customer_id=payer.gateway_customer_id):
                if method.id == payment_method_id:
                    return method
    raise DomainError("No such payment method for this organization.", code="unknown_payment_method")


def payment_method_remove(*, actor, organization: Organization, payment_method_id: str) -> None:
    """Remove a saved method at its gateway (detached at Stripe, the token deleted at PayPal); when
    it was the default, the organization has no default any more (automatic collection then waits
    for the customer to pay from the portal)."""
    method = payment_method_owned_get(organization=organization, payment_method_id=payment_method_id)
    payer = PaymentCustomer.objects.get(organization=organization)
    gateway_get(payer.method_gateway(str(method.type))).payment_method_detach(payment_method_id=method.id)
    with audit_actor(actor), transaction.atomic():
        locked = PaymentCustomer.objects.select_for_update().get(pk=payer.pk)
        if locked.default_payment_method_id == method.id:
            locked.default_payment_method_id = locked.default_method_type = locked.default_method_label = ""
            locked.default_card_exp_month = locked.default_card_exp_year = None
        if locked.paypal_token_id == method.id:
            locked.paypal_token_id = locked.paypal_label = ""
            if locked.paypal_setup_finished:  # its approval's return page no longer answers "saved"
                locked.paypal_setup_token_id, locked.paypal_setup_finished = "", False
        locked.save()
        audit_event(locked, event="payment_method.removed", method=method.label)


# --- PayPal approval ------------------------------------------------------------------------------


def paypal_approval_start(*, organization: Organization, return_url: str, cancel_url: str) -> str:
    """Start saving a PayPal wallet: a vault setup token whose approval page PayPal shows the payer
    (the URL returned). Only its id is kept, as the approval under way: the return may turn that
    token, and no other, into this organization's wallet. Raises GatewayError (not connected,
    down, refused)."""
    adapter = gateway_get("paypal")
    payer, _ = PaymentCustomer.objects.get_or_create(organization=organization)
    session = adapter.approval_start(
        customer_id=payer.paypal_customer_id,
        reference=organization.external_id,
        return_url=return_url,
        cancel_url=cancel_url,
        idempotency_key=f"ppsetup-{organization.pk}-{uuid.uuid4().hex}",
    )
    PaymentCustomer.objects.filter(pk=payer.pk).update(
        paypal_setup_token_id=session.setup_token_id, paypal_setup_finished=False
    )
    return session.approve_url


def paypal_approval_finish(*, actor, organization: Organization, setup_token_id: str) -> PaymentMethodInfo:
    """PayPal sent the payer back with an approved setup token: it becomes the organization's
    wallet (a payment token; a wallet saved before is replaced and deleted at PayPal). The token
    must be the approval this organization started (DomainError `setup_incomplete` otherwise, and
    for a token the payer did not approve): nothing is saved then."""
    payer = PaymentCustomer.objects.filter(organization=organization).first()
    if payer is None or not setup_token_id or setup_token_id != payer.paypal_setup_token_id:
        raise DomainError("PayPal was not saved.", code="setup_incomplete")
    if payer.paypal_setup_finished and payer.paypal_token_id:  # a reloaded return page: already saved
        return _paypal_methods(payer)[0]
    adapter = gateway_get("paypal")
    try:
        # The key follows the setup token: a reloaded return page gets the same payment token.
        method, customer_id = adapter.approval_finish(
            setup_token_id=setup_token_id, idempotency_key=f"pptoken-{setup_token_id}"
        )
    except GatewayError as error:
        if error.code == "setup_incomplete":
            raise DomainError("PayPal was not saved.", code="setup_incomplete") from error
        raise
    if not customer_id or (payer.paypal_customer_id and customer_id != payer.paypal_customer_id):
        raise DomainError("PayPal was not saved.", code="setup_incomplete")
    with audit_actor(actor), transaction.atomic():
        locked = PaymentCustomer.objects.select_for_update().get(pk=payer.pk)
        if locked.paypal_setup_token_id != setup_token_id or locked.paypal_setup_finished:
            if locked.paypal_token_id == method.id:  # a concurrent return of the same approval saved it
                return method
            raise DomainError("PayPal was not saved.", code="setup_incomplete")
        replaced = locked.paypal_token_id if locked.paypal_token_id != method.id else ""
        locked.paypal_customer_id = customer_id
        locked.paypal_token_id, locked.paypal_label = method.id, method.label[:100]
        locked.paypal_setup_finished = True
        if replaced and locked.default_payment_method_id == replaced:
            locked.default_payment_method_id, locked.default_method_label = method.id, method.label[:100]
        locked.save()
        audit_event(locked, event="payment_method.added", method=method.label)
    if replaced:
        adapter.payment_method_detach(payment_method_id=replaced)
    return method


def paypal_approval_cancel(*, organization: Organization) -> None:
    """The payer cancelled on PayPal's page: the approval under way is dropped, nothing saved."""
    PaymentCustomer.objects.filter(organization=organization).exclude(paypal_setup_token_id="").update(
        paypal_setup_token_id="", paypal_setup_finished=False
    )


def collection_method_set(*, actor, organization: Organization, method: str) -> PaymentCustomer:
    if method not in CollectionMethod.values:
        raise DomainError(
            f"collection_method must be one of {CollectionMethod.values}.", code="invalid_collection_method"
        )
    with audit_actor(actor), transaction.atomic():
        payer, _ = PaymentCustomer.objects.select_for_update().get_or_create(organization=organization)
        before = payer.collection_method
        payer.collection_method = method
        payer.save()
        audit_event(payer, event="collection_method.set", collection_method=(before, method))
    return payer


__all__ = ["GatewayError"]
