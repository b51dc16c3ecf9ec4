"""A new plan version states its prices: an empty POST /api/v1/plans/<code>/versions used to make a
free version that new subscriptions then took (issue 9)."""

import pytest

from billing.models import PlanCharge, PlanVersion
from tests.factories import APIKeyFactory, PlanFactory
from tests.helpers import bearer


@pytest.fixture
def key(in_a):
    PlanFactory(code="pro", currency="EUR", base_fee="49.00")
    return APIKeyFactory(name="w", scopes=["read", "write"]).secret


def post(client, body, key):
    return client.post("/api/v1/plans/pro/versions", body, content_type="application/json", **bearer(key))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({}, ["base_fee", "charges"]),
        ({"base_fee": "59.00"}, ["charges"]),
        ({"charges": []}, ["base_fee"]),
        ({"base_fee": None, "charges": []}, ["base_fee"]),
    ],
)
def test_a_version_without_its_base_fee_or_charges_is_refused(client_a, key, body, missing):
    response = post(client_a, body, key)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], sorted(error["fields"])) == ("validation_error", missing)
    assert list(PlanVersion.objects.values_list("version", "base_fee")) == [(1, 49)]


@pytest.mark.django_db
def test_a_free_version_without_charges_is_made_only_when_said_so(client_a, key):
    response = post(client_a, {"base_fee": "0", "charges": []}, key)
    assert response.status_code == 201, response.content
    assert (response.json()["current_version"]["version"], response.json()["current_version"]["base_fee"]) == (2, "0")
    assert not PlanCharge.objects.exists()
