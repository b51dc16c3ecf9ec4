"""Package pricing: a fixed amount per started block of units, after free units.

Callers must run this inside core.money.exact_context().
"""

from __future__ import annotations

from decimal import Decimal

from billing.pricing.results import BreakdownItem
from billing.pricing.schema import PackagePrice

_ZERO = Decimal(0)


def started_packages(billable: Decimal, package_size: Decimal) -> Decimal:
    """How many blocks of `package_size` the billable units start: ceil(billable / package_size).

    Integer division and remainder are exact in Decimal, unlike a division that would have to
    round 1/3 before taking the ceiling.
    """
    whole, remainder = divmod(billable, package_size)
    return whole + 1 if remainder else whole


def package(price: PackagePrice, quantity: Decimal) -> tuple[Decimal, list[BreakdownItem]]:
    """`package_amount` for every started block of `package_size` units beyond `free_units`.

    Zero billable units cost nothing (no block is started). Two items, always in this order:
    "free_units" (quantity = units absorbed by the free allowance, amount 0) and "packages"
    (quantity = started packages, unit_amount = package_amount).
    """
    free = min(quantity, price.free_units)
    billable = quantity - free
    blocks = started_packages(billable, price.package_size)
    items = [
        BreakdownItem(label="free_units", tier=None, quantity=free, unit_amount=_ZERO, flat_amount=_ZERO, amount=_ZERO),
        BreakdownItem(
            label="packages",
            tier=None,
            quantity=blocks,
            unit_amount=price.package_amount,
            flat_amount=_ZERO,
            amount=blocks * price.package_amount,
        ),
    ]
    return items[1].amount, items
