"""Django admin for billing, one module per concept (autodiscovery imports this package)."""

from billing.admin import coupons, limits, organizations, plans, subscriptions, unknown_customers  # noqa: F401
