"""dj-stripe's webhook endpoints are view-only in the admin: the tenant's Stripe webhooks come to our
own view with its encrypted secret, and dj-stripe's add form called Stripe with dj-stripe's global
keys, a failed call escaping as a server error (found by the PCI sweep)."""

from __future__ import annotations

import pytest
from djstripe.models import WebhookEndpoint

LIST = "/admin/djstripe/webhookendpoint/"


@pytest.mark.django_db
def test_an_endpoint_is_not_added_here_and_nothing_is_written(client_a, staff):
    staff("owner")
    assert client_a.get(LIST).status_code == 200  # still looked at
    assert client_a.get(f"{LIST}add/").status_code == 403
    response = client_a.post(
        f"{LIST}add/",
        {"base_url": "https://billing.example", "enabled_events": ["*"], "api_version": "", "metadata": "{}"},
    )
    assert response.status_code == 403
    assert not WebhookEndpoint.objects.exists()
