"""Usage as the API and the portal ask for it: which customer the caller may see, which period
"now" means for that customer, and the figures (read through metering's selectors only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from accounts.api.principal import ApiPrincipal
from billing.models import Organization, Subscription
from billing.periods import calendar_period_containing
from billing.selectors.organization import organization_visible_get, subscription_current_get
from core.errors import DomainError
from metering.models import Meter
from metering.selectors.usage import UsageResult, usage_for_customer, usage_get


@dataclass(frozen=True)
class CustomerUsage:
    customer: str
    start: datetime
    end: datetime
    meters: dict[str, Decimal | None]
    subscription: Subscription | None = None  # the live subscription whose period this is, if any


def usage_customer_get(*, principal: ApiPrincipal, customer: str) -> Organization | None:
    """The organization whose external_id is `customer`, as this caller may see it.

    Customer members see only their own organizations, an organization's usage key only its own:
    anything else, existing or not, is the same 404 `not_found`. Machine and staff credentials
    see every customer, including one that has events but no organization yet (None): metering
    knows customers only by external id."""
    organization = organization_visible_get(principal=principal, external_id=customer)
    if organization is None and (principal.is_customer_member or principal.organization_id is not None):
        raise DomainError(f"No customer {customer!r}.", code="not_found", status_code=404)
    return organization


def usage_period_default(
    *, organization: Organization | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The customer's current billing period: the live subscription's current period, else the
    current UTC calendar month (also for a customer without an organization)."""
    start, end, _ = _period_and_subscription(organization=organization, now=now)
    return start, end


def _period_and_subscription(
    *, organization: Organization | None, now: datetime | None
) -> tuple[datetime, datetime, Subscription | None]:
    if organization is not None:
        subscription = subscription_current_get(organization=organization)
        if subscription is not None:
            return subscription.current_period_start, subscription.current_period_end, subscription
    start, end = calendar_period_containing(instant=now or timezone.now(), timezone="UTC", interval="month")
    return start, end, None


def usage_report_get(
    *,
    principal: ApiPrincipal,
    customer: str,
    meter_code: str,
    start: datetime | None = None,
    end: datetime | None = None,
    group_by: bool = False,
    window: str | None = None,
    now: datetime | None = None,
) -> UsageResult:
    """One meter's usage by one customer. A missing `start`/`end` comes from the current period.

    Errors (DomainError): `not_found` 404 (a member asking for another customer), `unknown_meter`
    400 (the meter is a query parameter, not the resource), and from metering `invalid_range`,
    `invalid_window`, `window_too_large`."""
    organization = usage_customer_get(principal=principal, customer=customer)
    meter = Meter.objects.filter(code=meter_code).first()
    if meter is None:
        raise DomainError(f"No meter with code {meter_code!r}.", code="unknown_meter")
    if start is None or end is None:
        period_start, period_end = usage_period_default(organization=organization, now=now)
        start = period_start if start is None else start
        end = period_end if end is None else end
    return usage_get(meter=meter, customer=customer, start=start, end=end, group_by=group_by, window=window)


def customer_usage_get(*, principal: ApiPrincipal, customer: str, now: datetime | None = None) -> CustomerUsage:
    """Every meter's usage by one customer over its current period."""
    organization = usage_customer_get(principal=principal, customer=customer)
    return _current_usage(customer=customer, organization=organization, now=now)


def organization_usage_current(*, organization: Organization, now: datetime | None = None) -> CustomerUsage:
    """Every meter's value for an organization's current period (portal page and live socket;
    the caller has already checked the user belongs to the organization)."""
    return _current_usage(customer=organization.external_id, organization=organization, now=now)


def _current_usage(*, customer: str, organization: Organization | None, now: datetime | None) -> CustomerUsage:
    start, end, subscription = _period_and_subscription(organization=organization, now=now)
    return CustomerUsage(
        customer=customer,
        start=start,
        end=end,
        meters=usage_for_customer(customer=customer, start=start, end=end),
        subscription=subscription,
    )
