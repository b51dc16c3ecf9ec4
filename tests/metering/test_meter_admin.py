"""The meter admin refuses what the meter services refuse as a form error on the page (the PCI sweep
found a malformed filter answered with a server error after the form had been accepted)."""

from __future__ import annotations

import pytest

from metering.models import Meter
from tests.factories import MeterFactory

ADD = "/admin/metering/meter/add/"
BASE = {
    "code": "calls",
    "name": "Calls",
    "event_type": "api_call",
    "aggregation": "count",
    "value_property": "",
    "filters": "[]",
    "group_by": "",  # comma-separated paths (the admin's array widget)
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"filters": '{"region": "eu"}'}, "filters must be a list of objects"),
        ({"aggregation": "sum"}, "A sum meter needs a value_property."),
        ({"group_by": "a,b,c,d"}, "group_by is a list of at most three property paths."),
    ],
)
def test_a_meter_the_services_refuse_is_a_form_error_and_nothing_is_written(client_a, staff, changes, message):
    staff("owner")
    response = client_a.post(ADD, {**BASE, **changes})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Meter.objects.exists()


@pytest.mark.django_db
def test_a_valid_meter_is_created_through_the_service(client_a, staff):
    staff("owner")
    response = client_a.post(ADD, BASE)
    assert response.status_code == 302
    meter = Meter.objects.get()
    assert (meter.code, meter.aggregation, meter.filters) == ("calls", "count", [])


@pytest.mark.django_db
def test_a_malformed_filter_on_change_is_a_form_error_and_the_meter_is_unchanged(client_a, staff):
    staff("owner")
    meter = MeterFactory(code="calls", name="Calls", event_type="api_call")
    response = client_a.post(f"/admin/metering/meter/{meter.pk}/change/", {**BASE, "filters": '[{"path": 5}]'})
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    meter.refresh_from_db()
    assert meter.filters == []
