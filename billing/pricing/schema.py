"""The price document: parsing, validation and normalization.

A price travels as JSON (ARCHITECTURE "Pricing semantics"). `parse_price` turns a document into a
typed, immutable value the engine computes with; `validate_price` returns the normalized document
(defaults filled in, every key present, decimal strings in plain notation) that is safe to store.
Both raise `PriceValidationError(code, message, path)` on the first problem found, checking in a
fixed order: document shape, model, unknown keys, missing keys, then each field in declaration
order, then rules across fields. A fixed order keeps the reported error stable for a given input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from billing.decimals import DecimalTextError, decimal_text_parse
from billing.pricing.errors import PriceErrorCode as Code
from billing.pricing.errors import PriceValidationError

# Plain ASCII decimal notation only (billing.decimals): no exponent, no sign other than "-", no
# surrounding spaces. One accepted spelling per number keeps stored prices comparable and diffs
# readable.
# Stripe accepts at most 12 decimal places for unit_amount_decimal; integer digits are bounded so
# a price times any realistic quantity stays inside the engine's exact 50-digit context.
MAX_INTEGER_DIGITS = 20
MAX_FRACTION_DIGITS = 12

MODELS = ("per_unit", "graduated", "volume", "package", "percentage")
TieredModel = Literal["graduated", "volume"]


@dataclass(frozen=True, slots=True)
class Tier:
    up_to: Decimal | None  # inclusive upper bound; None only on the last tier
    unit_amount: Decimal
    flat_amount: Decimal


@dataclass(frozen=True, slots=True)
class PerUnitPrice:
    unit_amount: Decimal
    minimum_amount: Decimal | None = None
    model: Literal["per_unit"] = "per_unit"


@dataclass(frozen=True, slots=True)
class TieredPrice:
    model: TieredModel
    tiers: tuple[Tier, ...]
    minimum_amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PackagePrice:
    package_size: Decimal
    package_amount: Decimal
    free_units: Decimal = Decimal(0)
    minimum_amount: Decimal | None = None
    model: Literal["package"] = "package"


@dataclass(frozen=True, slots=True)
class PercentagePrice:
    rate: Decimal  # percent: "2.9" means 2.9 %
    fixed_amount: Decimal = Decimal(0)
    free_events: int = 0
    free_amount: Decimal = Decimal(0)
    min_amount_per_event: Decimal | None = None
    max_amount_per_event: Decimal | None = None
    minimum_amount: Decimal | None = None
    model: Literal["percentage"] = "percentage"


ParsedPrice = PerUnitPrice | TieredPrice | PackagePrice | PercentagePrice

# Keys each model accepts: required ones first, then optional ones, in normalized output order.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "per_unit": ("unit_amount",),
    "graduated": ("tiers",),
    "volume": ("tiers",),
    "package": ("package_size", "package_amount"),
    "percentage": ("rate",),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {
    "per_unit": ("minimum_amount",),
    "graduated": ("minimum_amount",),
    "volume": ("minimum_amount",),
    "package": ("free_units", "minimum_amount"),
    "percentage": (
        "fixed_amount",
        "free_events",
        "free_amount",
        "min_amount_per_event",
        "max_amount_per_event",
        "minimum_amount",
    ),
}
_TIER_KEYS = ("up_to", "unit_amount", "flat_amount")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _decimal(value: object, path: str, *, nullable: bool = False) -> Decimal | None:
    """A plain-notation decimal string as a Decimal (None for null where null is allowed)."""
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        kind = "null" if value is None else type(value).__name__
        raise PriceValidationError(
            Code.NOT_A_DECIMAL_STRING, f'must be a decimal string such as "1.50", not {kind}.', path
        )
    try:
        # "-0" comes back as 0: one spelling of zero.
        return decimal_text_parse(value, max_integer_digits=MAX_INTEGER_DIGITS, max_fraction_digits=MAX_FRACTION_DIGITS)
    except DecimalTextError as exc:
        shown = f"{value[:40]!r}{'…' if len(value) > 40 else ''}"
        if exc.reason == "format":
            raise PriceValidationError(
                Code.NOT_A_DECIMAL_STRING, f'{shown} is not a decimal string such as "1.50".', path
            ) from None
        raise PriceValidationError(
            Code.DECIMAL_OUT_OF_RANGE,
            f"{shown} has more than {MAX_INTEGER_DIGITS} integer or {MAX_FRACTION_DIGITS} decimal digits.",
            path,
        ) from None


def _required_decimal(value: object, path: str) -> Decimal:
    parsed = _decimal(value, path)
    assert parsed is not None  # not nullable
    return parsed


def _amount(value: object, path: str, *, nullable: bool = False) -> Decimal | None:
    parsed = _decimal(value, path, nullable=nullable)
    if parsed is not None and parsed < 0:
        raise PriceValidationError(Code.NEGATIVE_AMOUNT, f"must not be negative (got {value!r}).", path)
    return parsed


def _required_amount(value: object, path: str) -> Decimal:
    parsed = _amount(value, path)
    assert parsed is not None
    return parsed


def _quantity(value: object, path: str) -> Decimal:
    parsed = _required_decimal(value, path)
    if parsed < 0:
        raise PriceValidationError(Code.NEGATIVE_QUANTITY, f"must not be negative (got {value!r}).", path)
    return parsed


def _check_keys(document: Mapping[str, Any], *, allowed: tuple[str, ...], required: tuple[str, ...], path: str) -> None:
    for key in document:
        if key not in allowed:
            raise PriceValidationError(Code.UNKNOWN_FIELD, f"unknown field {key!r}.", _join(path, str(key)))
    for key in required:
        if key not in document:
            raise PriceValidationError(Code.MISSING_FIELD, f"{key!r} is required.", _join(path, key))


def _parse_tiers(value: object, path: str) -> tuple[Tier, ...]:
    if not isinstance(value, list | tuple):
        raise PriceValidationError(Code.NOT_A_LIST, "must be a list of tiers.", path)
    if not value:
        raise PriceValidationError(Code.TIERS_EMPTY, "needs at least one tier.", path)
    tiers: list[Tier] = []
    # The first tier starts at zero, so its bound must be above zero like every later bound must
    # be above the one before it.
    previous_bound = Decimal(0)
    last = len(value) - 1
    for index, raw in enumerate(value):
        tier_path = _join(path, index)
        if not isinstance(raw, Mapping):
            raise PriceValidationError(Code.NOT_AN_OBJECT, "each tier must be an object.", tier_path)
        _check_keys(raw, allowed=_TIER_KEYS, required=("up_to",), path=tier_path)
        # Stripe's rule: a tier may omit either amount (it counts as 0) but not both.
        if "unit_amount" not in raw and "flat_amount" not in raw:
            raise PriceValidationError(
                Code.TIER_WITHOUT_AMOUNT, "a tier needs a unit_amount, a flat_amount or both.", tier_path
            )
        bound_path = _join(tier_path, "up_to")
        up_to = _decimal(raw["up_to"], bound_path, nullable=True)
        if up_to is None and index != last:
            raise PriceValidationError(
                Code.UNBOUNDED_TIER_NOT_LAST, "only the last tier may have up_to null.", bound_path
            )
        if up_to is not None and index == last:
            raise PriceValidationError(
                Code.LAST_TIER_BOUNDED, "the last tier must have up_to null (it takes all remaining usage).", bound_path
            )
        if up_to is not None:
            if up_to <= previous_bound:
                raise PriceValidationError(
                    Code.TIERS_NOT_ASCENDING,
                    f"up_to must be greater than {previous_bound} (bounds strictly ascend from 0).",
                    bound_path,
                )
            previous_bound = up_to
        unit_amount = _required_amount(raw.get("unit_amount", "0"), _join(tier_path, "unit_amount"))
        flat_amount = _required_amount(raw.get("flat_amount", "0"), _join(tier_path, "flat_amount"))
        tiers.append(Tier(up_to=up_to, unit_amount=unit_amount, flat_amount=flat_amount))
    return tuple(tiers)


def _parse_free_events(value: object, path: str) -> int:
    # A count of events, so a JSON integer (bool is an int subclass in Python but not a count).
    if isinstance(value, bool) or not isinstance(value, int):
        raise PriceValidationError(
            Code.NOT_AN_INTEGER, f"must be a whole number of events, not {type(value).__name__}.", path
        )
    if value < 0:
        raise PriceValidationError(Code.NEGATIVE_QUANTITY, f"must not be negative (got {value}).", path)
    return value


def parse_price(price: object) -> ParsedPrice:
    """The typed form of a price document; raises PriceValidationError if it breaks the contract."""
    if not isinstance(price, Mapping):
        raise PriceValidationError(Code.NOT_AN_OBJECT, "a price must be an object.", "")
    if "model" not in price:
        raise PriceValidationError(Code.MISSING_FIELD, "'model' is required.", "model")
    model = price["model"]
    if model not in MODELS:
        raise PriceValidationError(
            Code.UNKNOWN_MODEL, f"unknown model {model!r}; expected one of {', '.join(MODELS)}.", "model"
        )
    required = _REQUIRED[model]
    _check_keys(price, allowed=("model", *required, *_OPTIONAL[model]), required=required, path="")
    minimum_amount = _amount(price.get("minimum_amount"), "minimum_amount", nullable=True)

    if model == "per_unit":
        return PerUnitPrice(
            unit_amount=_required_amount(price["unit_amount"], "unit_amount"), minimum_amount=minimum_amount
        )

    if model in ("graduated", "volume"):
        return TieredPrice(model=model, tiers=_parse_tiers(price["tiers"], "tiers"), minimum_amount=minimum_amount)

    if model == "package":
        package_size = _required_decimal(price["package_size"], "package_size")
        if package_size <= 0:
            message = f"must be greater than 0 (got {price['package_size']!r})."
            raise PriceValidationError(Code.PACKAGE_SIZE_NOT_POSITIVE, message, "package_size")
        return PackagePrice(
            package_size=package_size,
            package_amount=_required_amount(price["package_amount"], "package_amount"),
            free_units=_quantity(price.get("free_units", "0"), "free_units"),
            minimum_amount=minimum_amount,
        )

    # percentage
    rate = _required_decimal(price["rate"], "rate")
    if rate < 0:
        raise PriceValidationError(Code.NEGATIVE_RATE, f"must not be negative (got {price['rate']!r}).", "rate")
    if rate > 100:
        raise PriceValidationError(
            Code.RATE_ABOVE_100, f"is a percentage of at most 100 (got {price['rate']!r}).", "rate"
        )
    minimum_per_event = _amount(price.get("min_amount_per_event"), "min_amount_per_event", nullable=True)
    maximum_per_event = _amount(price.get("max_amount_per_event"), "max_amount_per_event", nullable=True)
    if minimum_per_event is not None and maximum_per_event is not None and minimum_per_event > maximum_per_event:
        raise PriceValidationError(
            Code.MIN_ABOVE_MAX, "min_amount_per_event must not exceed max_amount_per_event.", "min_amount_per_event"
        )
    return PercentagePrice(
        rate=rate,
        fixed_amount=_required_amount(price.get("fixed_amount", "0"), "fixed_amount"),
        free_events=_parse_free_events(price.get("free_events", 0), "free_events"),
        free_amount=_required_amount(price.get("free_amount", "0"), "free_amount"),
        min_amount_per_event=minimum_per_event,
        max_amount_per_event=maximum_per_event,
        minimum_amount=minimum_amount,
    )


def _text(value: Decimal | None) -> str | None:
    # Fixed-point notation, never an exponent: str(Decimal("1E+3")) would be "1E+3".
    return None if value is None else format(value, "f")


def price_to_document(price: ParsedPrice) -> dict[str, Any]:
    """The normalized JSON document of a parsed price: every key present, in a fixed order."""
    if isinstance(price, PerUnitPrice):
        body: dict[str, Any] = {"unit_amount": _text(price.unit_amount)}
    elif isinstance(price, TieredPrice):
        body = {
            "tiers": [
                {"up_to": _text(t.up_to), "unit_amount": _text(t.unit_amount), "flat_amount": _text(t.flat_amount)}
                for t in price.tiers
            ]
        }
    elif isinstance(price, PackagePrice):
        body = {
            "package_size": _text(price.package_size),
            "package_amount": _text(price.package_amount),
            "free_units": _text(price.free_units),
        }
    else:
        body = {
            "rate": _text(price.rate),
            "fixed_amount": _text(price.fixed_amount),
            "free_events": price.free_events,
            "free_amount": _text(price.free_amount),
            "min_amount_per_event": _text(price.min_amount_per_event),
            "max_amount_per_event": _text(price.max_amount_per_event),
        }
    return {"model": price.model, **body, "minimum_amount": _text(price.minimum_amount)}


def validate_price(price: object) -> dict[str, Any]:
    """The normalized form of a price document, or PriceValidationError.

    Normalized means: optional keys filled with their defaults ("0", 0 or null), keys in a fixed
    order, decimal strings in plain notation without a redundant leading zero or sign ("05" -> "5",
    "-0" -> "0"); trailing zeros are kept ("5.00" stays "5.00"). Idempotent:
    validate_price(validate_price(p)) == validate_price(p).
    """
    return price_to_document(parse_price(price))
