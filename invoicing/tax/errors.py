"""Errors of the tax engine, each with a stable machine-readable code.

The API maps these codes to 4xx responses (CONVENTIONS "Validation and errors"): a code, once
published, keeps its meaning; messages are for humans and may be reworded. The engine raises
instead of guessing: an invoice with a wrong tax is worse than an invoice that waits for an address.
"""

from __future__ import annotations

from enum import StrEnum

from core.errors import DomainError


class TaxErrorCode(StrEnum):
    """Why tax could not be computed. Values are the stable wire codes."""

    # The customer's country is missing, or its region where the rules need one (US state,
    # Canadian province).
    CUSTOMER_LOCATION_REQUIRED = "customer_location_required"
    UNKNOWN_COUNTRY = "unknown_country"
    UNKNOWN_REGION = "unknown_region"
    # An exempt customer must carry the reference of its exemption (certificate number, legal
    # basis): it is printed on the invoice and is what an auditor asks for.
    EXEMPTION_REFERENCE_REQUIRED = "exemption_reference_required"
    # The seller's settings are malformed (unknown origin country, unrecognised registration).
    INVALID_SETTINGS = "invalid_settings"
    # The seller is registered somewhere the built-in rules have no rates for.
    UNSUPPORTED_JURISDICTION = "unsupported_jurisdiction"
    # The rate table has no rate for the jurisdiction on the date of supply (before the table's
    # coverage, or a gap in the data).
    RATE_NOT_FOUND = "rate_not_found"
    INVALID_LINE = "invalid_line"
    CURRENCY_MISMATCH = "currency_mismatch"
    UNKNOWN_TAX_CODE = "unknown_tax_code"
    INVALID_DATE = "invalid_date"
    # The rate table data file itself is malformed (overlapping periods, bad rate).
    INVALID_RATE_TABLE = "invalid_rate_table"


class TaxError(DomainError, ValueError):
    """A domain error of the tax engine: `code` is a `TaxErrorCode` value, `message` is for humans.
    422: the request is well formed, but tax cannot be computed for it as things stand (the
    customer's address, the seller's registrations, the rate table)."""

    code: TaxErrorCode
    status_code = 422

    def __init__(self, code: TaxErrorCode, message: str) -> None:
        super().__init__(message, code=code)

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"

    def __repr__(self) -> str:
        return f"TaxError(code={str(self.code)!r}, message={self.message!r})"
