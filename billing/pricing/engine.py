"""The pricing engine's entry points: a quantity (and, for percentage prices, the events' values)
in, an exact ChargeResult out. Pure: no database, no clock, no settings, no rounding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, DecimalException, localcontext
from typing import Any

from billing.pricing.errors import PricingInputError
from billing.pricing.errors import PricingInputErrorCode as InputCode
from billing.pricing.package import package
from billing.pricing.percentage import percentage
from billing.pricing.results import BreakdownItem, ChargeResult
from billing.pricing.schema import ParsedPrice, PercentagePrice, PerUnitPrice, TieredPrice, parse_price
from billing.pricing.tiered import graduated, volume, volume_cliffs
from core.money import exact_context

_ZERO = Decimal(0)


def _usage_decimal(value: object, *, what: str, invalid: InputCode, negative: InputCode) -> Decimal:
    # Floats are a programming error (the value is already inexact), hence TypeError rather
    # than a domain error with a code.
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{what} must be a Decimal or int, not {type(value).__name__}.")
    number = Decimal(value)
    if not number.is_finite():
        raise PricingInputError(invalid, f"{what} must be finite, not {number}.")
    if number < 0:
        raise PricingInputError(negative, f"{what} must not be negative (got {number}).")
    return number


def _per_unit(price: PerUnitPrice, quantity: Decimal) -> tuple[Decimal, list[BreakdownItem]]:
    amount = quantity * price.unit_amount
    item = BreakdownItem(
        label="units", tier=None, quantity=quantity, unit_amount=price.unit_amount, flat_amount=_ZERO, amount=amount
    )
    return amount, [item]


def _compute(
    price: ParsedPrice, quantity: Decimal, values: list[Decimal] | None
) -> tuple[Decimal, list[BreakdownItem]]:
    if isinstance(price, PerUnitPrice):
        return _per_unit(price, quantity)
    if isinstance(price, TieredPrice):
        return (graduated if price.model == "graduated" else volume)(price.tiers, quantity)
    if isinstance(price, PercentagePrice):
        assert values is not None  # checked by the caller
        return percentage(price, values)
    return package(price, quantity)


def _price_parsed(price: ParsedPrice, quantity: Decimal, event_values: Sequence[Decimal] | None) -> ChargeResult:
    qty = _usage_decimal(
        quantity, what="quantity", invalid=InputCode.INVALID_QUANTITY, negative=InputCode.NEGATIVE_QUANTITY
    )
    values: list[Decimal] | None = None
    if isinstance(price, PercentagePrice):
        if event_values is None:
            raise PricingInputError(
                InputCode.EVENT_VALUES_REQUIRED, "a percentage price needs the value of each event (event_values)."
            )
        values = [
            _usage_decimal(
                v,
                what=f"event_values[{i}]",
                invalid=InputCode.INVALID_EVENT_VALUE,
                negative=InputCode.NEGATIVE_EVENT_VALUE,
            )
            for i, v in enumerate(event_values)
        ]
    elif event_values is not None:
        raise PricingInputError(
            InputCode.EVENT_VALUES_UNEXPECTED, f"event_values only apply to percentage prices, not {price.model}."
        )

    try:
        with localcontext(exact_context()):
            if values is not None and sum(values, _ZERO) != qty:
                # The quantity is the meter's sum of the same events; a difference means the two
                # were read from different windows, and billing either would be wrong.
                raise PricingInputError(
                    InputCode.EVENT_VALUES_MISMATCH,
                    f"quantity {qty} is not the sum of event_values ({sum(values, _ZERO)}).",
                )
            amount, breakdown = _compute(price, qty, values)
            minimum = price.minimum_amount
            true_up = max(minimum - amount, _ZERO) if minimum is not None else _ZERO
    except DecimalException as exc:
        # Inexact (a result needed more digits than the exact context holds) or an operation
        # that overflowed: refuse rather than bill a rounded figure.
        raise PricingInputError(
            InputCode.PRECISION_EXCEEDED, f"the charge cannot be computed exactly ({type(exc).__name__})."
        ) from exc
    return ChargeResult(amount=amount, breakdown=breakdown, minimum_true_up=true_up)


def price_charge(
    price: Mapping[str, Any], quantity: Decimal, *, event_values: Sequence[Decimal] | None = None
) -> ChargeResult:
    """The exact price of `quantity` units under the price document `price`.

    The document is validated first (PriceValidationError with a stable code and a path). Then:
    - `quantity` is a non-negative Decimal (or int); fractional quantities are fine (GB, hours).
      A float raises TypeError; a negative quantity PricingInputError("negative_quantity").
    - per_unit: quantity * unit_amount.
    - graduated / volume: Stripe semantics, see billing.pricing.tiered (inclusive `up_to`, the
      first tier's flat_amount owed at zero usage, fractional quantities split by position:
      1000.5 with up_to 1000 puts 1000 in the first tier and 0.5 in the next).
    - package: package_amount per started block of package_size after free_units; see
      billing.pricing.package.
    - percentage: needs `event_values` (each event's amount, in event order) whose sum must equal
      `quantity` (PricingInputError("event_values_mismatch") otherwise); free allowances and
      per-event bounds as documented in billing.pricing.percentage. Other models refuse
      event_values ("event_values_unexpected") so a mis-wired caller is noticed.
    - `minimum_amount` (any model): reported as `minimum_true_up`, never added into `amount`.

    The result is exact: computed in a 50-digit context that raises on any rounding, surfaced
    as PricingInputError("precision_exceeded"). Rounding to the currency happens later, per line.
    """
    return _price_parsed(parse_price(price), quantity, event_values)


def price_volume_cliffs(price: Mapping[str, Any]) -> list[Decimal]:
    """For a volume price, the tier bounds where one more (fraction of a) unit lowers the total;
    empty for every other model, whose totals never decrease. Meant for the plan editor to warn
    a seller who did not intend the cliff (see billing.pricing.tiered.volume_cliffs)."""
    parsed = parse_price(price)
    if not isinstance(parsed, TieredPrice) or parsed.model != "volume":
        return []
    with localcontext(exact_context()):
        return volume_cliffs(parsed.tiers)
