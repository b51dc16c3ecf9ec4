"""Graduated and volume tiers, with Stripe's semantics.

Tier i covers the positions (bound[i-1], bound[i]] on the quantity axis, with bound[-1] = 0 and
the last tier unbounded. A quantity q "occupies" positions (0, q]; for fractional quantities that
is what decides where the units fall: with tiers up to 1000 and beyond, 1000.5 puts 1000 in the
first tier and 0.5 in the second, and 1000 exactly stays wholly in the first (bounds are
inclusive). Callers must run these inside core.money.exact_context().
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

from billing.pricing.results import BreakdownItem
from billing.pricing.schema import Tier

_ZERO = Decimal(0)


def graduated(tiers: tuple[Tier, ...], quantity: Decimal) -> tuple[Decimal, list[BreakdownItem]]:
    """Each unit priced at the tier it falls in, plus the flat_amount of every tier touched.

    A tier is touched when some of the quantity falls in it; the first tier is always touched, so
    its flat_amount is owed even at zero usage (Stripe bills the first flat rate at quantity 0).
    One "tier" item per touched tier, in tier order; `quantity` is the units inside that tier.
    """
    items: list[BreakdownItem] = []
    lower = _ZERO
    for index, tier in enumerate(tiers):
        # A later tier is only reached when the quantity passed the previous bound, so `inside`
        # is positive for every tier after the first: exactly the touched tiers get an item.
        inside = (quantity if tier.up_to is None else min(quantity, tier.up_to)) - lower
        items.append(
            BreakdownItem(
                label="tier",
                tier=index,
                quantity=inside,
                unit_amount=tier.unit_amount,
                flat_amount=tier.flat_amount,
                amount=inside * tier.unit_amount + tier.flat_amount,
            )
        )
        if tier.up_to is None or quantity <= tier.up_to:
            break
        lower = tier.up_to
    return sum((item.amount for item in items), _ZERO), items


def volume_tier_index(tiers: tuple[Tier, ...], quantity: Decimal) -> int:
    """The tier the total falls in: the first whose inclusive bound holds it (the first tier for 0)."""
    for index, tier in enumerate(tiers):
        if tier.up_to is None or quantity <= tier.up_to:
            return index
    raise AssertionError("validated tiers end with an unbounded tier")  # pragma: no cover


def volume(tiers: tuple[Tier, ...], quantity: Decimal) -> tuple[Decimal, list[BreakdownItem]]:
    """All units priced at the tier the total falls in, plus that tier's flat_amount.

    The total is NOT monotonic in general: crossing a bound re-prices every unit, so 1000 units at
    1.00 cost 1000 while 1001 at 0.50 cost 500.50 (Stripe: "the total might decrease"). See
    `volume_cliffs` to find such bounds in a price.
    """
    index = volume_tier_index(tiers, quantity)
    tier = tiers[index]
    amount = quantity * tier.unit_amount + tier.flat_amount
    item = BreakdownItem(
        label="tier",
        tier=index,
        quantity=quantity,
        unit_amount=tier.unit_amount,
        flat_amount=tier.flat_amount,
        amount=amount,
    )
    return amount, [item]


def volume_cliffs(tiers: tuple[Tier, ...]) -> list[Decimal]:
    """The bounds past which a volume price charges less than at the bound itself.

    Within a tier the total only grows (amounts are non-negative), so it can fall only where a
    bound b is crossed: from b * unit[i] + flat[i] to just above b * unit[i+1] + flat[i+1]. Since
    quantities may be fractional, "just above" is the limit from the right, so a bound is a cliff
    when b * unit[i] + flat[i] > b * unit[i+1] + flat[i+1]. An empty list means the total never
    decreases as the quantity grows.
    """
    cliffs: list[Decimal] = []
    for below, above in pairwise(tiers):
        bound = below.up_to
        assert bound is not None  # only the last tier is unbounded
        if bound * below.unit_amount + below.flat_amount > bound * above.unit_amount + above.flat_amount:
            cliffs.append(bound)
    return cliffs
