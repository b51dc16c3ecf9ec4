"""Usage from customers that have no organization (yet). Events name their customer by the
seller's external id and may come before the organization is created, so metering keeps them
and counts them per customer (metering.models.EventCustomer); only billing knows which ids have
an organization (closed ones included: their usage is not unknown)."""

from __future__ import annotations

from django.db.models import Count, QuerySet, Sum

from billing.models import Organization
from metering.models import EventCustomer


def unknown_customers_list(*, queryset: QuerySet[EventCustomer] | None = None) -> QuerySet[EventCustomer]:
    """Customer ids with stored events and no organization, the most recently seen first (one
    query: an anti-join on the organizations' external ids)."""
    base = EventCustomer.objects.all() if queryset is None else queryset
    return base.exclude(customer__in=Organization.objects.values("external_id")).order_by("-last_seen", "customer")


def unknown_customers_totals() -> tuple[int, int]:
    """(customers, events) of usage from unknown customers."""
    totals = unknown_customers_list().order_by().aggregate(customers=Count("customer"), events=Sum("event_count"))
    return totals["customers"], totals["events"] or 0
