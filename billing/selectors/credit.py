"""The credit balance, derived from the append-only ledger (billing.models.CreditEntry)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.models import GRANT_KINDS, CreditEntry, Organization
from core.money import Money

ZERO = Decimal(0)


@dataclass(frozen=True)
class GrantRemaining:
    grant: CreditEntry
    remaining: Decimal


def credit_grants_usable(*, organization: Organization, currency: str, at: datetime) -> list[GrantRemaining]:
    """Grants with credit left that have not expired at `at`, in the order credit is used:
    soonest expiry first, grants without expiry last, then oldest first."""
    grants = (
        CreditEntry.objects.filter(organization=organization, currency=currency, kind__in=GRANT_KINDS)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at), created_at__lte=at)
        .annotate(
            used=Coalesce(
                Sum("uses__amount", filter=Q(uses__created_at__lte=at)),
                Value(ZERO),
                output_field=DecimalField(max_digits=24, decimal_places=10),
            )
        )
        .annotate(remaining=F("amount") + F("used"))
        .filter(remaining__gt=0)
        .order_by(F("expires_at").asc(nulls_last=True), "created_at", "id")
    )
    return [GrantRemaining(grant=g, remaining=g.remaining) for g in grants]


def credit_balance_get(*, organization: Organization, at: datetime | None = None) -> Money:
    """Usable credit at `at` (now by default) in the organization's currency."""
    at = at or timezone.now()
    grants = credit_grants_usable(organization=organization, currency=organization.currency, at=at)
    return Money(sum((g.remaining for g in grants), ZERO), organization.currency)


def credit_entries_list(*, organization: Organization):
    return CreditEntry.objects.filter(organization=organization).order_by("created_at", "id")
