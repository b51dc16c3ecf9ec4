"""PayPal: Orders v2 with vaulted payment tokens, Payments v2 refunds, locally verified webhooks.

See docs/payments-paypal.md. `PayPalGateway` is the adapter; everything it returns is in `types`.
"""

from payments.paypal.client import PAYPAL_LIVE_URL, PAYPAL_SANDBOX_URL, PayPalConfig, PayPalError, PayPalGateway
from payments.paypal.webhooks import PAYPAL_CERT_HOSTS, CertificateSource, WebhookRejected

__all__ = [
    "PAYPAL_CERT_HOSTS",
    "PAYPAL_LIVE_URL",
    "PAYPAL_SANDBOX_URL",
    "CertificateSource",
    "PayPalConfig",
    "PayPalError",
    "PayPalGateway",
    "WebhookRejected",
]
