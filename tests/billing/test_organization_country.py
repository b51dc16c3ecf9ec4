"""A country code must name an ISO 3166-1 country (babel's CLDR territories less the codes that
are no country: ZZ, EU, QO…), in the service, hence in the API and the admin alike."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from billing.models import Organization
from billing.services.organization import organization_create, organization_update
from tests.factories import OrganizationFactory
from tests.helpers import bearer


@pytest.mark.django_db
@pytest.mark.parametrize("country", ["ZZ", "EU", "UN", "XA", "AA"])
def test_the_api_refuses_a_code_that_is_no_country(client_a, writer, country):
    body = {"external_id": "acme", "name": "Acme", "currency": "EUR", "country": country}
    response = client_a.post("/api/v1/organizations", body, content_type="application/json", **bearer(writer))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["fields"] == {
        "country": [
            {
                "code": "invalid_country",
                "message": f"'{country}' is not an ISO 3166-1 alpha-2 country code (e.g. DE, US).",
            }
        ]
    }
    assert Organization.objects.count() == 0

    OrganizationFactory(external_id="there", country="FR")
    patched = client_a.patch(
        "/api/v1/organizations/there", {"country": country}, content_type="application/json", **bearer(writer)
    )
    assert patched.status_code == 400
    assert patched.json()["error"]["fields"]["country"][0]["code"] == "invalid_country"
    assert Organization.objects.get(external_id="there").country == "FR"


@pytest.mark.django_db
@pytest.mark.parametrize("country", ["DE", "US", "XK", "AQ"])
def test_countries_are_accepted(client_a, writer, country):
    body = {"external_id": "acme", "name": "Acme", "currency": "EUR", "country": country}
    response = client_a.post("/api/v1/organizations", body, content_type="application/json", **bearer(writer))
    assert response.status_code == 201, response.content
    assert Organization.objects.get(external_id="acme").country == country


@pytest.mark.django_db
def test_the_services_refuse_it_too(in_a):
    with pytest.raises(ValidationError) as created:
        organization_create(actor=None, external_id="acme", name="Acme", currency="EUR", country="ZZ")
    assert list(created.value.message_dict) == ["country"]
    assert Organization.objects.count() == 0
    org = OrganizationFactory(country="DE")
    with pytest.raises(ValidationError) as updated:
        organization_update(actor=None, organization=org, country="ZZ")
    assert list(updated.value.message_dict) == ["country"]
    org.refresh_from_db()
    assert org.country == "DE"
