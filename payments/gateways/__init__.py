"""The tenant's gateway, built from its settings row and the configured API base."""

from __future__ import annotations

import functools
import time

from django.conf import settings
from django.db import connection

from payments.gateways.base import Gateway, GatewayError
from payments.models import GatewaySettings


def gateway_settings_get() -> GatewaySettings:
    return GatewaySettings.objects.first() or GatewaySettings()


SETTINGS_TTL = 10.0  # seconds another process's change of the settings takes to be seen here
_settings_read: dict[str, tuple[float, GatewaySettings]] = {}


def gateway_settings_cached() -> GatewaySettings:
    """The settings row as this process read it at most SETTINGS_TTL seconds ago, per schema (the
    inbound webhook's hot path: reading it was two of its three statements). Read-only. A save or
    delete in this process drops it at once (`gateway_settings_forget`, on the model's signals);
    other processes see a change within SETTINGS_TTL, and a webhook they refuse meanwhile (a
    rotated secret) is delivered again by the gateway."""
    schema = connection.schema_name
    now = time.monotonic()
    read = _settings_read.get(schema)
    if read is not None and now - read[0] < SETTINGS_TTL:
        return read[1]
    row = gateway_settings_get()
    _settings_read[schema] = (now, row)
    return row


def gateway_settings_forget(**_signal) -> None:
    _settings_read.clear()


def gateway_get(name: str = "stripe", *, row: GatewaySettings | None = None) -> Gateway:
    """Raises GatewayError `gateway_not_configured` when the tenant has not connected it. `row`:
    the settings when the caller has read them already."""
    row = row if row is not None else gateway_settings_get()
    if name == "paypal":
        from payments.gateways.paypal import PayPalAdapter
        from payments.paypal import PayPalConfig

        if not row.paypal_ready:
            raise GatewayError("PayPal is not connected for this tenant.", code="gateway_not_configured")
        return PayPalAdapter(
            PayPalConfig(
                base_url=settings.PAYPAL_API_BASE,
                client_id=row.paypal_client_id,
                client_secret=row.paypal_client_secret(),
                webhook_id=row.paypal_webhook_id,
            )
        )
    if name != "stripe":
        raise GatewayError(f"unknown gateway {name!r}", code="gateway_unknown")
    if not row.stripe_ready:
        raise GatewayError("Stripe is not connected for this tenant.", code="gateway_not_configured")
    return _stripe(row.stripe_secret_key(), row.stripe_publishable_key, settings.STRIPE_API_BASE)


@functools.lru_cache(maxsize=256)
def _stripe(secret_key: str, publishable_key: str, api_base: str) -> Gateway:
    """One client per account and base per process (its HTTP connections are kept alive across
    charges); a rotated key is another entry."""
    from payments.gateways.stripe import StripeGateway

    return StripeGateway(secret_key=secret_key, publishable_key=publishable_key, api_base=api_base)
