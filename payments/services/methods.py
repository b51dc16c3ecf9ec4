"""An organization's payer record: its customer at the gateway, its default method (chosen from
what the gateway holds: card and bank details are typed only into the gateway's own UI), and
whether it is collected automatically."""

from __future__ import annotations

from django.db import transaction

from accounts.audit import audit_actor, audit_event
from billing.models import Organization
from core.errors import DomainError
from payments.gateways import gateway_get
from payments.gateways.base import GatewayError, PaymentMethodInfo, SetupSession
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


def payment_methods_list(*, organization: Organization) -> tuple[PaymentCustomer | None, list[PaymentMethodInfo]]:
    payer = PaymentCustomer.objects.filter(organization=organization).first()
    if payer is None or not payer.gateway_customer_id:
        return payer, []
    return payer, gateway_get(payer.gateway).payment_methods_list(customer_id=payer.gateway_customer_id)


def payment_method_default_set(*, actor, organization: Organization, payment_method_id: str) -> PaymentCustomer:
    """Make a method the gateway holds for this customer the default (checked at the gateway)."""
    payer = payer_ensure(organization=organization)
    methods = {m.id: m for m in gateway_get(payer.gateway).payment_methods_list(customer_id=payer.gateway_customer_id)}
    method = methods.get(payment_method_id)
    if method is None:
        raise DomainError("No such payment method for this organization.", code="unknown_payment_method")
    with audit_actor(actor), transaction.atomic():
        locked = PaymentCustomer.objects.select_for_update().get(pk=payer.pk)
        before = locked.default_method_label
        locked.default_payment_method_id = method.id
        locked.default_method_type = str(method.type)
        locked.default_method_label = method.label[:100]
        locked.save()
        audit_event(locked, event="payment_method.default_set", method=(before, method.label))
    method_changed_hooks_run(organization.pk)
    return locked


def payment_method_owned_get(*, organization: Organization, payment_method_id: str) -> PaymentMethodInfo:
    """A method the gateway holds for this organization's customer (asked at the gateway: an id
    from a browser is only a claim), else DomainError `unknown_payment_method`."""
    payer = PaymentCustomer.objects.filter(organization=organization).first()
    if payer is not None and payer.gateway_customer_id and payment_method_id:
        for method in gateway_get(payer.gateway).payment_methods_list(customer_id=payer.gateway_customer_id):
            if method.id == payment_method_id:
                return method
    raise DomainError("No such payment method for this organization.", code="unknown_payment_method")


def payment_method_remove(*, actor, organization: Organization, payment_method_id: str) -> None:
    """Detach a saved method at the gateway; when it was the default, the organization has no
    default any more (automatic collection then waits for the customer to pay from the portal)."""
    method = payment_method_owned_get(organization=organization, payment_method_id=payment_method_id)
    payer = PaymentCustomer.objects.get(organization=organization)
    gateway_get(payer.gateway).payment_method_detach(payment_method_id=method.id)
    with audit_actor(actor), transaction.atomic():
        locked = PaymentCustomer.objects.select_for_update().get(pk=payer.pk)
        if locked.default_payment_method_id == method.id:
            locked.default_payment_method_id = locked.default_method_type = locked.default_method_label = ""
            locked.save()
        audit_event(locked, event="payment_method.removed", method=method.label)


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
