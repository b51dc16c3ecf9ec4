"""Writes to organizations. The audit log records each change with the request's actor."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.audit import Actor, audit_actor
from billing.locks import organization_lock
from billing.models import Organization, OrganizationStatus
from billing.services.subscription import subscriptions_end_for_organization
from billing.webhooks import customer_emit
from core.errors import DomainError

EDITABLE_FIELDS = (
    "name",
    "billing_email",
    "currency",
    "timezone",
    "country",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "tax_id",
    "tax_exempt",
    "tax_exemption_reference",
    "metadata",
)


def organization_create(*, actor: Actor, external_id: str, name: str, currency: str, **fields: Any) -> Organization:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    organization = Organization(external_id=external_id, name=name, currency=currency, **fields)
    organization.full_clean()
    with audit_actor(actor), transaction.atomic(durable=True):
        organization.save()
        customer_emit("customer.created", organization)
    return organization


def organization_update(*, actor: Actor, organization: Organization, **changes: Any) -> Organization:
    """Change the editable fields. The currency is fixed once a subscription exists: amounts of
    different currencies never mix on one account."""
    with audit_actor(actor), transaction.atomic(durable=True):
        locked = Organization.objects.select_for_update().get(pk=organization.pk)
        organization_update_check(organization=locked, changes=changes)
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.full_clean()
        locked.save()
        customer_emit("customer.updated", locked)
    return locked


def organization_update_check(*, organization: Organization, changes: dict[str, Any]) -> None:
    """The rules of `organization_update` for `changes`, without writing (the admin form runs them
    to show a refusal on the form): only editable fields; the currency is fixed once a
    subscription exists. Field values themselves are checked by the model (`full_clean`)."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    if "currency" in changes and changes["currency"] != organization.currency and organization.subscriptions.exists():
        raise DomainError(
            "The currency cannot change once the organization has a subscription.", code="currency_locked"
        )


def organization_close(*, actor: Actor, organization: Organization) -> Organization:
    """Closing keeps the record (invoices and the audit trail refer to it) and stops billing: its
    live subscriptions end at once (their final bills credit unused in-advance fees)."""
    with audit_actor(actor), transaction.atomic(durable=True):
        locked = organization_lock(organization.pk)
        if locked.status != OrganizationStatus.CLOSED:
            locked.status = OrganizationStatus.CLOSED
            locked.save(update_fields=["status", "updated_at"])
            subscriptions_end_for_organization(organization=locked, at=timezone.now().replace(microsecond=0))
            customer_emit("customer.closed", locked)
    return locked
