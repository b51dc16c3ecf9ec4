"""The tax engine's interface: what a caller hands in, what a provider hands back.

Every value is a frozen dataclass of plain values (no models, no request), so the caller builds
them from the tenant's settings and the invoice's snapshotted customer details, and a provider is
a pure function of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

__all__ = [
    "LineResult",
    "LineTax",
    "TaxCode",
    "TaxCustomer",
    "TaxLineInput",
    "TaxName",
    "TaxProvider",
    "TaxSettings",
]


class TaxName(StrEnum):
    """The name of a tax as printed on the invoice line."""

    VAT = "VAT"
    GST = "GST"
    HST = "HST"
    PST = "PST"
    # Manitoba calls its provincial sales tax the retail sales tax.
    RST = "RST"
    QST = "QST"
    SALES_TAX = "Sales tax"
    # For a line taxed nowhere in a country the rules do not model (name of no particular tax).
    TAX = "Tax"


class TaxCode(StrEnum):
    """What a line sells, as far as tax is concerned.

    The platform sells one kind of product, software as a service (an "electronically supplied
    service" in EU terms); a line without a code is that. `NONTAXABLE` marks lines outside the scope
    of any tax (e.g. a pass-through charge the tenant has been told is not a supply).
    """

    SAAS = "saas"
    NONTAXABLE = "nontaxable"


@dataclass(frozen=True, slots=True)
class TaxSettings:
    """The seller's (tenant's) tax position; the caller builds it from the tenant's settings.

    - `origin_country`: ISO 3166-1 alpha-2 country where the seller is established.
    - `registrations`: where the seller is registered to collect tax. Codes: an EU member state
      ("DE": VAT-registered there; an EU seller lists its own country here unless it is a VAT-exempt
      small business), "EU-OSS" (One Stop Shop, Union or non-Union scheme: B2C VAT of every member
      state), "GB", "AU", "CA" (GST/HST), "CA-BC" / "CA-SK" / "CA-MB" / "CA-QC" (PST / RST / QST),
      "US-NY" … (a US state where the seller has sales tax nexus and is registered).
    - `prices_include_tax`: line amounts are gross (tax-inclusive) instead of net.
    - `us_taxability`: per-state override (state code -> bool) of whether the tenant's product is
      taxable, on top of the built-in default map in the rate table.
    """

    origin_country: str
    registrations: frozenset[str] = frozenset()
    prices_include_tax: bool = False
    us_taxability: Mapping[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "origin_country", _code(self.origin_country))
        object.__setattr__(self, "registrations", frozenset(_code(r) for r in self.registrations))
        # A read-only copy: the dataclass is frozen, so its map must not change under it either.
        taxability = dict(self.us_taxability)
        if not all(isinstance(taxable, bool) for taxable in taxability.values()):
            # bool("false") is True: a settings value that is not a real bool is a bug upstream.
            raise TypeError("us_taxability values must be bools.")
        taxability = {_code(state): taxable for state, taxable in taxability.items()}
        object.__setattr__(self, "us_taxability", MappingProxyType(taxability))


@dataclass(frozen=True, slots=True)
class TaxCustomer:
    """Where the customer is and what it is, as snapshotted on the invoice.

    - `country`: ISO 3166-1 alpha-2; None or "" when unknown (the engine then refuses).
    - `region`: the subdivision where the rules need one: US state ("NY") or Canadian province
      ("ON"); "US-NY" is accepted too.
    - `tax_id`: VAT number (with or without its country prefix), UK VAT number, ABN, Canadian
      business number; a valid one makes the customer a business for the rules that depend on it.
    - `is_business`: the customer says it is a business. Without a valid tax id this only matters
      where business status needs no number (UK B2B from abroad); elsewhere a business without a
      valid number is taxed as a consumer.
    - `exempt` / `exemption_reference`: the caller vouches for the exemption (certificate number,
      legal basis); the reference is required and printed on every line.
    """

    country: str | None
    region: str | None = None
    tax_id: str | None = None
    is_business: bool = False
    exempt: bool = False
    exemption_reference: str = ""


@dataclass(frozen=True, slots=True)
class TaxLineInput:
    """One invoice line to tax.

    `amount` is a Decimal in `currency`, already rounded to the currency's minor unit (the engine
    refuses one that is not); negative for credit lines. It is net, or gross when the seller's
    `prices_include_tax` is set. `tax_code` is a `TaxCode` value; None means `TaxCode.SAAS`.
    """

    key: str
    amount: Decimal
    currency: str
    tax_code: str | None = None


@dataclass(frozen=True, slots=True)
class LineTax:
    """One tax component of a line, as recorded on the invoice.

    - `rate`: percent (Decimal("19") is 19 %); 0 when the line is not taxed, and then `reason`
      says why (reverse charge with its legal mention, outside the scope, exempt, no nexus …).
    - `jurisdiction`: "DE", "GB", "AU", "CA" (federal GST), "CA-ON" (HST), "CA-BC" (PST),
      "US-NY" …
    - `taxable_amount`: the line's net amount this component was computed on.
    - `amount`: the tax, rounded on its own to the currency's minor unit, half-up.
    """

    name: str
    jurisdiction: str
    rate: Decimal
    taxable_amount: Decimal
    amount: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class LineResult:
    """The tax of one input line: `gross_amount == net_amount + tax_amount` exactly, and
    `tax_amount` is the sum of the components' (each rounded) amounts. `taxes` always holds at
    least one component, so every line records a rate, a jurisdiction and a reason."""

    key: str
    currency: str
    net_amount: Decimal
    tax_amount: Decimal
    gross_amount: Decimal
    taxes: tuple[LineTax, ...]


class TaxProvider(Protocol):
    """Computes the tax of an invoice's lines. `at` is the date of supply: it picks the rates in
    effect. Raises `TaxError` (stable codes) rather than guessing."""

    def tax_lines(
        self,
        *,
        settings: TaxSettings,
        customer: TaxCustomer,
        lines: Sequence[TaxLineInput],
        at: datetime,
    ) -> list[LineResult]: ...


def _code(value: str) -> str:
    # Country, region and registration codes are compared upper-case and without stray blanks;
    # anything else about them is validated by the provider that interprets them.
    return value.strip().upper()
