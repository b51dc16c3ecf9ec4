"""Django admin for billing, one module per concept (autodiscovery imports this package)."""

from billing.admin import organizations, plans, subscriptions  # noqa: F401
