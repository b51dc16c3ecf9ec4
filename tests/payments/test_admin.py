"""Gateway settings in the admin: owners only, secrets encrypted at rest and never shown again."""

import pytest

from core import crypto
from payments.models import GatewaySettings
from tests.factories import UserFactory, totp_enable
from tests.helpers import staff_login

SECRET = "sk_test_" + "s3cr3t" * 5
HOOK = "whsec_" + "h00k" * 6


@pytest.fixture
def staff(client_a, in_a):
    def login(role):
        user = UserFactory(staff_role=role)
        staff_login(client_a, email=user.email, totp_secret=totp_enable(user))
        return user

    return login


def test_secrets_are_stored_encrypted_and_never_shown_again(client_a, staff):
    staff("owner")
    response = client_a.post(
        "/admin/payments/gatewaysettings/add/",
        {"stripe_publishable_key": "pk_test_x", "stripe_secret_key": SECRET, "stripe_webhook_secret": HOOK},
    )
    assert response.status_code == 302
    row = GatewaySettings.objects.get()
    assert SECRET not in row.stripe_secret_key_encrypted and HOOK not in row.stripe_webhook_secret_encrypted
    assert (crypto.decrypt(row.stripe_secret_key_encrypted), row.stripe_webhook_secret()) == (SECRET, HOOK)
    page = client_a.get(f"/admin/payments/gatewaysettings/{row.pk}/change/").content.decode()
    assert SECRET not in page and HOOK not in page and row.stripe_secret_key_encrypted not in page
    # a blank field keeps the stored secret; a typed one replaces it
    client_a.post(
        f"/admin/payments/gatewaysettings/{row.pk}/change/",
        {"stripe_publishable_key": "pk_test_y", "stripe_secret_key": "", "stripe_webhook_secret": "whsec_new"},
    )
    row.refresh_from_db()
    assert (row.stripe_publishable_key, row.stripe_secret_key(), row.stripe_webhook_secret()) == (
        "pk_test_y",
        SECRET,
        "whsec_new",
    )


def test_only_owners_reach_the_gateway_settings(client_a, staff):
    staff("admin")
    response = client_a.post(
        "/admin/payments/gatewaysettings/add/",
        {"stripe_publishable_key": "pk_test_x", "stripe_secret_key": SECRET, "stripe_webhook_secret": HOOK},
    )
    assert response.status_code == 403
    assert not GatewaySettings.objects.exists()


def test_paypal_secret_is_write_only_too(client_a, staff):
    staff("owner")
    paypal_secret = "EPpaypal-secret-" + "z" * 20
    fields = {"stripe_publishable_key": "", "paypal_client_id": "AYclient", "paypal_webhook_id": "WH-1"}
    response = client_a.post("/admin/payments/gatewaysettings/add/", {**fields, "paypal_client_secret": paypal_secret})
    assert response.status_code == 302
    row = GatewaySettings.objects.get()
    assert paypal_secret not in row.paypal_client_secret_encrypted and row.paypal_client_secret() == paypal_secret
    assert (row.paypal_client_id, row.paypal_webhook_id, row.paypal_ready) == ("AYclient", "WH-1", True)
    page = client_a.get(f"/admin/payments/gatewaysettings/{row.pk}/change/").content.decode()
    assert paypal_secret not in page and row.paypal_client_secret_encrypted not in page
    client_a.post(f"/admin/payments/gatewaysettings/{row.pk}/change/", {**fields, "paypal_client_secret": ""})
    row.refresh_from_db()
    assert row.paypal_client_secret() == paypal_secret
