"""The pricing engine: how a quantity becomes money (ARCHITECTURE "Pricing semantics").

Pure and exact: it reads no database, clock or settings, computes in Decimal only, and returns
unrounded amounts; invoice lines round them per currency through core.money. Invoicing prices
through this package only.

- `price_charge(price, quantity, *, event_values=None) -> ChargeResult`
- `validate_price(price) -> dict` (normalized document) / `PriceValidationError(code, message, path)`
- `price_volume_cliffs(price) -> list[Decimal]` (bounds where a volume price's total drops)
"""

from billing.pricing.engine import price_charge, price_volume_cliffs
from billing.pricing.errors import (
    PriceErrorCode,
    PriceValidationError,
    PricingError,
    PricingInputError,
    PricingInputErrorCode,
)
from billing.pricing.results import BreakdownItem, ChargeResult
from billing.pricing.schema import parse_price, validate_price

__all__ = [
    "BreakdownItem",
    "ChargeResult",
    "PriceErrorCode",
    "PriceValidationError",
    "PricingError",
    "PricingInputError",
    "PricingInputErrorCode",
    "parse_price",
    "price_charge",
    "price_volume_cliffs",
    "validate_price",
]
