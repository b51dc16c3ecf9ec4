"""Errors of the pricing engine, each with a stable machine-readable code.

The API maps these codes to 4xx responses (CONVENTIONS "Validation and errors"), so a code, once
published, keeps its meaning; messages are for humans and may be reworded.
"""

from __future__ import annotations

from enum import StrEnum

from core.errors import DomainError


class PriceErrorCode(StrEnum):
    """Why a price document was refused. Values are the stable wire codes."""

    NOT_AN_OBJECT = "not_an_object"
    NOT_A_LIST = "not_a_list"
    UNKNOWN_MODEL = "unknown_model"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    # Amounts and quantities travel as decimal strings ("0.002"); JSON numbers are refused because
    # a client's float has already lost the exact value before it reaches us.
    NOT_A_DECIMAL_STRING = "not_a_decimal_string"
    DECIMAL_OUT_OF_RANGE = "decimal_out_of_range"
    NOT_AN_INTEGER = "not_an_integer"
    NEGATIVE_AMOUNT = "negative_amount"
    NEGATIVE_QUANTITY = "negative_quantity"
    NEGATIVE_RATE = "negative_rate"
    # A percentage price takes a share of each event's amount; more than all of it is a typo.
    RATE_ABOVE_100 = "rate_above_100"
    TIERS_EMPTY = "tiers_empty"
    TIERS_NOT_ASCENDING = "tiers_not_ascending"
    LAST_TIER_BOUNDED = "last_tier_up_to_not_null"
    UNBOUNDED_TIER_NOT_LAST = "tier_up_to_null_before_last"
    TIER_WITHOUT_AMOUNT = "tier_without_amount"
    PACKAGE_SIZE_NOT_POSITIVE = "package_size_not_positive"
    MIN_ABOVE_MAX = "min_above_max"


class PricingInputErrorCode(StrEnum):
    """Why a (valid) price could not be applied to the usage it was given."""

    INVALID_QUANTITY = "invalid_quantity"
    NEGATIVE_QUANTITY = "negative_quantity"
    EVENT_VALUES_REQUIRED = "event_values_required"
    EVENT_VALUES_UNEXPECTED = "event_values_unexpected"
    EVENT_VALUES_MISMATCH = "event_values_mismatch"
    INVALID_EVENT_VALUE = "invalid_event_value"
    NEGATIVE_EVENT_VALUE = "negative_event_value"
    PRECISION_EXCEEDED = "precision_exceeded"


class PricingError(DomainError, ValueError):
    """Base of the engine's domain errors (still ValueErrors, as callers catching bad input
    expect)."""

    def __init__(self, code: str, message: str, *, path: str | None = None) -> None:
        super().__init__(message, code=code, path=path)


class PriceValidationError(PricingError):
    """A price document breaks the contract. `path` locates the offending value inside the
    document ("" for the document itself, "tiers[2].up_to" for a nested one)."""

    path: str

    def __init__(self, code: str, message: str, path: str = "") -> None:
        super().__init__(code, message, path=path)

    def __str__(self) -> str:
        where = self.path or "<price>"
        return f"{where}: {self.message} [{self.code}]"

    def __repr__(self) -> str:
        return f"PriceValidationError(code={self.code!r}, message={self.message!r}, path={self.path!r})"


class PricingInputError(PricingError):
    """The usage handed to the engine (quantity, event values, groups) cannot be priced: the
    price is valid, the input is not processable with it (422)."""

    status_code = 422

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"

    def __repr__(self) -> str:
        return f"PricingInputError(code={self.code!r}, message={self.message!r})"
