"""Customer and subscription events are written to the outbox by the services, in the transaction
of the change; a refused change writes none."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.exceptions import ValidationError

from billing.models import Organization
from billing.services.organization import organization_close, organization_create, organization_update
from billing.services.subscription import (
    subscription_cancel,
    subscription_change_plan,
    subscription_create,
    subscription_resume,
)
from core.errors import DomainError
from core.models import OutboxMessage
from core.services.webhook_endpoint import webhook_endpoint_create
from tests.factories import PlanVersionFactory


def events() -> list[tuple[str, dict]]:
    return [
        (m.payload["event"]["type"], m.payload["event"]["data"])
        for m in OutboxMessage.objects.filter(kind="webhook.deliver").order_by("id")
    ]


@pytest.fixture
def endpoint(in_a):
    return webhook_endpoint_create(url="http://127.0.0.1:9/hooks").endpoint


@pytest.mark.django_db
def test_customer_events(endpoint):
    org = organization_create(actor=None, external_id="acme", name="Acme", currency="EUR", country="DE")
    with pytest.raises(ValidationError):
        organization_update(actor=None, organization=org, currency="QQQ")  # refused: nothing emitted
    organization_update(actor=None, organization=org, name="Acme GmbH")
    organization_close(actor=None, organization=Organization.objects.get(pk=org.pk))
    assert [(t, d["id"], d["name"], d["status"]) for t, d in events()] == [
        ("customer.created", "acme", "Acme", "active"),
        ("customer.updated", "acme", "Acme GmbH", "active"),
        ("customer.closed", "acme", "Acme GmbH", "closed"),
    ]
    created = events()[0][1]
    assert set(created) == {
        "id", "name", "status", "currency", "timezone", "billing_email", "country", "tax_exempt", "metadata",
        "created_at", "updated_at",
    }  # fmt: skip


@pytest.mark.django_db
def test_subscription_events(endpoint):
    org = organization_create(actor=None, external_id="acme", name="Acme", currency="USD")
    small = PlanVersionFactory(plan__code="small", plan__currency="USD", base_fee="10.00")
    large = PlanVersionFactory(plan__code="large", plan__currency="USD", base_fee="50.00")
    OutboxMessage.objects.all().delete()
    with time_machine.travel(datetime(2027, 3, 10, tzinfo=UTC), tick=False):
        sub = subscription_create(actor=None, organization=org, plan_version=small)
    with time_machine.travel(datetime(2027, 3, 12, tzinfo=UTC), tick=False):
        subscription_change_plan(actor=None, subscription=sub, plan_version=large)
        with pytest.raises(DomainError):
            subscription_change_plan(actor=None, subscription=sub, plan_version=large)  # same version: refused
        subscription_cancel(actor=None, subscription=sub)
        subscription_resume(actor=None, subscription=sub)
    found = events()
    assert [t for t, _ in found] == [
        "subscription.created",
        "subscription.updated",
        "subscription.canceled",
        "subscription.resumed",
    ]
    created, updated, canceled, resumed = (d for _, d in found)
    assert (created["id"], created["customer"], created["plan"]) == (sub.pk, "acme", "small")
    assert created["status"] == "active"
    assert updated["plan"] == "large" and updated["change"] == {
        "kind": "upgrade",
        "timing": "now",
        "effective_at": "2027-03-12T00:00:00+00:00",
        "previous": {"plan": "small", "plan_version": small.version},
        "new": {"plan": "large", "plan_version": large.version},
    }
    assert canceled["cancel_at_period_end"] is True and canceled["reason"] == "requested"
    assert canceled["effective_at"] == "2027-04-01T00:00:00+00:00"
    assert resumed["cancel_at_period_end"] is False and resumed["ended_at"] is None
