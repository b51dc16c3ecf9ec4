"""What the engine returns: an exact charge and the pieces it is made of."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class BreakdownItem:
    """One piece of a charge, ready to become an invoice sub-line.

    Every item satisfies `amount == quantity * unit_amount + flat_amount` exactly, and a charge's
    `amount` is the sum of its items' amounts.

    - `label`: stable slug naming the piece ("units", "tier", "packages", "free_units",
      "free_events", "rate", "fixed_fee", "per_event_bounds").
    - `tier`: 0-based index into the price's `tiers` list for tier items, else None.
    - `quantity`: what `unit_amount` multiplies — units, started packages, charged event value or
      paid events depending on the label (each label's docstring in the engine says which).
    """

    label: str
    tier: int | None
    quantity: Decimal
    unit_amount: Decimal
    flat_amount: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """The exact (unrounded) price of one charge's usage.

    `amount` is NOT rounded to a currency: rounding happens once per invoice line, in the
    currency's minor unit (core.money.round_money). `minimum_true_up` is what the charge's
    `minimum_amount` adds on top (max(0, minimum_amount - amount)); it is reported apart so the
    invoice can show it as its own line, and is 0 when the price has no minimum.
    """

    amount: Decimal
    breakdown: list[BreakdownItem] = field(default_factory=list)
    minimum_true_up: Decimal = Decimal(0)
