"""Writes to the credit ledger: grants, their use on invoices, and voiding by staff. Entries are
only ever added (CreditEntry); the balance is derived (billing.selectors.credit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import Actor, audit_actor
from billing.locks import organization_lock
from billing.models import GRANT_KINDS, CreditEntry, CreditKind, Organization
from billing.selectors.credit import credit_grants_usable
from core.errors import DomainError
from core.money import round_money

ZERO = Decimal(0)


@dataclass(frozen=True)
class CreditApplication:
    applied: Decimal  # the total taken from the balance
    entries: list[CreditEntry]


def credit_grant_check(
    *, organization: Organization, amount: Decimal, currency: str, kind: str, expires_at: datetime | None, at: datetime
) -> None:
    """The rules a grant must meet (DomainError otherwise); forms check them before submitting."""
    if kind not in GRANT_KINDS:
        raise DomainError(f"kind must be one of {list(GRANT_KINDS)}.", code="invalid_credit_kind")
    if isinstance(amount, float) or not isinstance(amount, Decimal) or not amount.is_finite():
        raise DomainError("amount must be a decimal.", code="invalid_amount")
    if currency != organization.currency:
        raise DomainError(
            f"Credit is held in the organization's currency ({organization.currency}), not {currency}.",
            code="currency_mismatch",
        )
    if amount <= 0 or round_money(amount, currency) != amount:
        raise DomainError(
            f"amount must be positive with at most the currency's decimals ({currency}).", code="invalid_amount"
        )
    if expires_at is not None and expires_at <= at:
        raise DomainError("expires_at must lie in the future.", code="invalid_expiry")


def credit_grant(
    *,
    actor: Actor,
    organization: Organization,
    amount: Decimal,
    currency: str,
    kind: str = CreditKind.PROMOTIONAL,
    expires_at: datetime | None = None,
    description: str = "",
    reference: str = "",
    at: datetime | None = None,
) -> CreditEntry:
    """Add credit to the organization's balance: purchased (prepaid), promotional (usually with
    an expiry), from a proration or from a credit note. In the organization's currency, rounded
    to its minor unit (credit is money the customer holds)."""
    at = at or timezone.now()
    credit_grant_check(
        organization=organization, amount=amount, currency=currency, kind=kind, expires_at=expires_at, at=at
    )
    with audit_actor(actor), transaction.atomic():
        organization_lock(organization.pk)
        return CreditEntry.objects.create(
            organization=organization,
            currency=currency,
            kind=kind,
            amount=amount,
            expires_at=expires_at,
            description=description,
            reference=reference,
            created_by=actor,
            created_at=at,
        )


def credit_apply(
    *, organization: Organization, amount: Decimal, currency: str, at: datetime, reference: str
) -> CreditApplication:
    """Take up to `amount` from the balance for an invoice (after tax): soonest-expiring grants
    first. Runs inside the caller's transaction (the invoice's), with the organization locked."""
    if amount <= 0:
        return CreditApplication(ZERO, [])
    with transaction.atomic(savepoint=False):
        organization_lock(organization.pk)
        left = amount
        entries = []
        for usable in credit_grants_usable(organization=organization, currency=currency, at=at):
            if left == 0:
                break
            take = min(left, usable.remaining)
            entries.append(
                CreditEntry.objects.create(
                    organization=organization,
                    currency=currency,
                    kind=CreditKind.APPLICATION,
                    amount=-take,
                    grant=usable.grant,
                    reference=reference,
                    created_at=at,
                )
            )
            left -= take
    return CreditApplication(amount - left, entries)


def credit_void(*, actor: Actor, grant: CreditEntry, description: str = "", at: datetime | None = None) -> CreditEntry:
    """Staff take back what is left of a grant (a mistaken or abused grant): one `void` entry."""
    at = at or timezone.now()
    with audit_actor(actor), transaction.atomic():
        organization_lock(grant.organization_id)
        if grant.kind not in GRANT_KINDS:
            raise DomainError("Only a grant can be voided.", code="not_a_grant")
        usable = {
            u.grant.pk: u.remaining
            for u in credit_grants_usable(organization=grant.organization, currency=grant.currency, at=at)
        }
        remaining = usable.get(grant.pk, ZERO)
        if remaining <= 0:
            raise DomainError("Nothing is left of this grant.", code="nothing_to_void")
        return CreditEntry.objects.create(
            organization_id=grant.organization_id,
            currency=grant.currency,
            kind=CreditKind.VOID,
            amount=-remaining,
            grant=grant,
            description=description,
            created_by=actor,
            created_at=at,
        )
