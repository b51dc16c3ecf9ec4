"""The tenant's gateway, built from its settings row and the configured API base."""

from __future__ import annotations

from django.conf import settings

from payments.gateways.base import Gateway, GatewayError
from payments.models import GatewaySettings


def gateway_settings_get() -> GatewaySettings:
    return GatewaySettings.objects.first() or GatewaySettings()


def gateway_get(name: str = "stripe") -> Gateway:
    """Raises GatewayError `gateway_not_configured` when the tenant has not connected it."""
    from payments.gateways.stripe import StripeGateway

    if name != "stripe":
        raise GatewayError(f"unknown gateway {name!r}", code="gateway_unknown")
    row = gateway_settings_get()
    if not row.stripe_ready:
        raise GatewayError("Stripe is not connected for this tenant.", code="gateway_not_configured")
    return StripeGateway(
        secret_key=row.stripe_secret_key(),
        publishable_key=row.stripe_publishable_key,
        api_base=settings.STRIPE_API_BASE,
    )
