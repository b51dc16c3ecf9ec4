"""The rate table: dated rates per jurisdiction and tax, read from data (rates.toml).

`RateTable.rate(jurisdiction, tax, on=..., tax_code=...)` answers the rate in force on a date of
supply or raises `TaxError(rate_not_found)`; it never falls back to a neighbouring period.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from itertools import pairwise
from types import MappingProxyType
from typing import Any, NoReturn

from invoicing.tax.errors import TaxError, TaxErrorCode
from invoicing.tax.interface import TaxCode, TaxName

__all__ = ["RateEntry", "RateTable", "builtin_rate_table"]


@dataclass(frozen=True, slots=True)
class RateEntry:
    """One rate of one tax in one jurisdiction, in force on `[valid_from, valid_to)`
    (`valid_to` None: still in force). `tax_code` None is the general rate."""

    jurisdiction: str
    tax: TaxName
    rate: Decimal
    valid_from: date
    valid_to: date | None = None
    tax_code: TaxCode | None = None

    def covers(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on < self.valid_to)


class RateTable:
    """Validated, immutable rate data: entries, the first date they answer for, and the default
    US SaaS taxability map."""

    def __init__(
        self,
        entries: Iterable[RateEntry],
        *,
        coverage_from: date,
        us_saas_taxable: Mapping[str, bool],
    ) -> None:
        self.coverage_from = coverage_from
        self.us_saas_taxable: Mapping[str, bool] = MappingProxyType(dict(us_saas_taxable))
        series: dict[tuple[str, TaxName, TaxCode | None], list[RateEntry]] = {}
        for entry in entries:
            if entry.valid_from < coverage_from:
                _invalid(f"{entry.jurisdiction} {entry.tax} starts {entry.valid_from}, before coverage_from.")
            if entry.valid_to is not None and entry.valid_to <= entry.valid_from:
                _invalid(f"{entry.jurisdiction} {entry.tax}: valid_to {entry.valid_to} is not after valid_from.")
            if not Decimal(0) <= entry.rate < Decimal(100):
                _invalid(f"{entry.jurisdiction} {entry.tax}: rate {entry.rate} is not a percent in [0, 100).")
            series.setdefault((entry.jurisdiction, entry.tax, entry.tax_code), []).append(entry)
        for key, periods in series.items():
            periods.sort(key=lambda e: e.valid_from)
            for earlier, later in pairwise(periods):
                if earlier.valid_to is None or earlier.valid_to > later.valid_from:
                    _invalid(
                        f"{key[0]} {key[1]}: periods starting {earlier.valid_from} and {later.valid_from} overlap."
                    )
        self._series = {key: tuple(periods) for key, periods in series.items()}

    @property
    def entries(self) -> tuple[RateEntry, ...]:
        return tuple(entry for periods in self._series.values() for entry in periods)

    def rate(
        self,
        jurisdiction: str,
        tax: TaxName,
        *,
        on: date,
        tax_code: TaxCode | None = None,
    ) -> Decimal:
        """The rate (percent) in force on `on`: the tax code's own entry if the jurisdiction has
        one for that code, else the general one."""
        if on < self.coverage_from:
            raise TaxError(
                TaxErrorCode.RATE_NOT_FOUND,
                f"The rate table covers dates of supply from {self.coverage_from}, not {on}.",
            )
        key = (jurisdiction, tax, tax_code)
        if tax_code is not None and key not in self._series:
            key = (jurisdiction, tax, None)
        for entry in self._series.get(key, ()):
            if entry.covers(on):
                return entry.rate
        raise TaxError(TaxErrorCode.RATE_NOT_FOUND, f"No {tax} rate for {jurisdiction} on {on}.")

    @classmethod
    def from_toml(cls, text: str) -> RateTable:
        """Parse and validate a table in the rates.toml format (see that file's header)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise TaxError(TaxErrorCode.INVALID_RATE_TABLE, f"Rate table is not valid TOML: {error}") from error
        coverage_from = data.get("coverage_from")
        if type(coverage_from) is not date:
            _invalid("coverage_from must be a date.")
        taxable = data.get("us_saas_taxable", {})
        if not all(isinstance(v, bool) for v in taxable.values()):
            _invalid("us_saas_taxable values must be booleans.")
        return cls(
            (_entry(raw) for raw in data.get("rates", [])),
            coverage_from=coverage_from,
            us_saas_taxable=taxable,
        )


@cache
def builtin_rate_table() -> RateTable:
    """The table shipped in this package (rates.toml), parsed once per process."""
    return RateTable.from_toml(resources.files("invoicing.tax").joinpath("rates.toml").read_text(encoding="utf-8"))


_ENTRY_KEYS = frozenset({"jurisdiction", "tax", "rate", "valid_from", "valid_to", "tax_code"})


def _entry(raw: Any) -> RateEntry:
    if not isinstance(raw, dict) or not _ENTRY_KEYS.issuperset(raw) or not {"jurisdiction", "tax", "rate"} <= set(raw):
        _invalid(f"Malformed rate entry {raw!r}.")
    # Rates are strings so they stay exact; a TOML float here would already be a binary fraction.
    if not isinstance(raw["rate"], str):
        _invalid(f"{raw['jurisdiction']}: rate must be a decimal string, not {raw['rate']!r}.")
    try:
        rate = Decimal(raw["rate"])
        tax = TaxName(raw["tax"])
        tax_code = TaxCode(raw["tax_code"]) if "tax_code" in raw else None
    except (InvalidOperation, ValueError) as error:
        raise TaxError(TaxErrorCode.INVALID_RATE_TABLE, f"Malformed rate entry {raw!r}: {error}") from error
    valid_from, valid_to = raw.get("valid_from"), raw.get("valid_to")
    # tomllib gives `datetime` (a `date` subclass) for date-times; only plain dates make sense here.
    if type(valid_from) is not date or (valid_to is not None and type(valid_to) is not date):
        _invalid(f"{raw['jurisdiction']}: valid_from / valid_to must be dates.")
    return RateEntry(
        jurisdiction=raw["jurisdiction"],
        tax=tax,
        rate=rate,
        valid_from=valid_from,
        valid_to=valid_to,
        tax_code=tax_code,
    )


def _invalid(message: str) -> NoReturn:
    raise TaxError(TaxErrorCode.INVALID_RATE_TABLE, message)
