"""Issue 9: events for customers that do not exist are kept (the organization may come later) and
made visible: the drainer keeps a per-customer tally (metering knows customers only by id);
billing lists those without an organization in the admin and exports a gauge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from prometheus_client import REGISTRY

from billing.selectors.unknown_customers import unknown_customers_list
from billing.tasks import unknown_customers_measure
from metering.models import EventCustomer, Rollup
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from metering.services.meter import meter_create
from tests.factories import OrganizationFactory, UserFactory, totp_enable
from tests.helpers import staff_login

WHEN = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


def land(*events, received_at: datetime) -> None:
    rows = [(event_id, customer, "api_call", WHEN, msgspec.Raw(b"{}")) for event_id, customer in events]
    landing_store(events=rows, received_at=received_at)


@pytest.fixture
def usage(in_a):
    """acme has an organization; ghost and phantom have none. e-1 is sent twice."""
    OrganizationFactory(external_id="acme")
    meter_create(actor=None, code="calls", name="Calls", event_type="api_call", aggregation="count")
    first = datetime(2026, 11, 20, 11, tzinfo=UTC)
    land(("e-1", "ghost"), ("e-2", "acme"), ("e-3", "ghost"), received_at=first)
    drain_once(max_events=100)
    land(("e-1", "ghost"), ("e-4", "ghost"), ("e-5", "phantom"), received_at=first + timedelta(hours=2))
    drain_once(max_events=100)
    return first


@pytest.mark.django_db
def test_the_drainer_keeps_a_tally_per_customer_of_what_it_stored(usage):
    tally = {c.customer: (c.event_count, c.first_seen, c.last_seen) for c in EventCustomer.objects.all()}
    later = usage + timedelta(hours=2)
    assert tally == {
        "acme": (1, usage, usage),
        "ghost": (3, usage, later),  # the repeated e-1 counts once
        "phantom": (1, later, later),
    }
    # Their events are kept and counted like any other.
    assert sum(Rollup.objects.filter(customer="ghost").values_list("event_count", flat=True)) == 3


@pytest.mark.django_db
def test_billing_lists_only_customers_without_an_organization(usage):
    assert [(c.customer, c.event_count) for c in unknown_customers_list()] == [("ghost", 3), ("phantom", 1)]
    OrganizationFactory(external_id="ghost")  # the organization came later
    assert [c.customer for c in unknown_customers_list()] == ["phantom"]


@pytest.mark.django_db
def test_a_periodic_task_exports_the_figures_as_gauges(usage, in_a):
    unknown_customers_measure()
    labels = {"tenant": in_a.schema_name}
    assert REGISTRY.get_sample_value("billing_unknown_customers", labels) == 2
    assert REGISTRY.get_sample_value("billing_unknown_customer_events", labels) == 4
    OrganizationFactory(external_id="phantom")
    unknown_customers_measure()
    assert REGISTRY.get_sample_value("billing_unknown_customers", labels) == 1
    assert REGISTRY.get_sample_value("billing_unknown_customer_events", labels) == 3


@pytest.mark.django_db
def test_staff_see_the_list_in_the_admin_read_only(usage, client_a):
    viewer = UserFactory(staff_role="viewer")
    staff_login(client_a, email=viewer.email, totp_secret=totp_enable(viewer))
    response = client_a.get("/admin/metering/unknowncustomerusage/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Usage from unknown customers" in page
    assert "ghost" in page and "phantom" in page and ">acme<" not in page
    assert client_a.get("/admin/metering/unknowncustomerusage/add/").status_code == 403
    assert client_a.get("/admin/").status_code == 200
    assert "Usage from unknown customers" in client_a.get("/admin/").content.decode()
