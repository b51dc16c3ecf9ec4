"""The portal settings are one row per tenant in the admin: the list opens it, and a second row
cannot be added (the singleton constraint refused it with a server error; found by the PCI sweep)."""

from __future__ import annotations

import pytest

from portal.models import PortalSettings

LIST = "/admin/portal/portalsettings/"


@pytest.mark.django_db
def test_the_list_opens_the_one_row_made_with_the_defaults(client_a, staff):
    staff("owner")
    response = client_a.get(LIST)
    row = PortalSettings.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}{row.pk}/change/"
    assert row.customers_choose_collection is False
    assert client_a.get(LIST).status_code == 302
    assert PortalSettings.objects.count() == 1


@pytest.mark.django_db
def test_a_second_row_is_refused_and_nothing_is_written(client_a, staff):
    staff("owner")
    row = PortalSettings.objects.create(customers_choose_collection=True)
    response = client_a.post(f"{LIST}add/", {"customers_choose_collection": ""})
    assert response.status_code == 403
    assert list(PortalSettings.objects.values_list("pk", "customers_choose_collection")) == [(row.pk, True)]


@pytest.mark.django_db
def test_the_row_is_changed_and_not_deleted(client_a, staff):
    staff("owner")
    row = PortalSettings.objects.create()
    response = client_a.post(f"{LIST}{row.pk}/change/", {"customers_choose_collection": "on"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.customers_choose_collection is True
    assert client_a.post(f"{LIST}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert PortalSettings.objects.filter(pk=row.pk).exists()
