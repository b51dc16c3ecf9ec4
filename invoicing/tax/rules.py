"""RulesTaxProvider: the built-in tax rules over the dated rate table.

Per invoice it validates the seller's settings, the customer's location and the lines, decides
once per tax code which taxes apply (a "plan": components with rate, jurisdiction and reason),
and applies that plan to every line, each component rounded on its own (invoicing.tax.amounts).
The rules themselves are listed in the package docstring (invoicing/tax/__init__.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, localcontext
from enum import StrEnum

from core.money import UnknownCurrencyError, exact_context, round_money
from invoicing.tax.amounts import line_split
from invoicing.tax.errors import TaxError, TaxErrorCode
from invoicing.tax.interface import (
    LineResult,
    LineTax,
    TaxCode,
    TaxCustomer,
    TaxLineInput,
    TaxName,
    TaxSettings,
)
from invoicing.tax.rates import RateTable, builtin_rate_table
from invoicing.tax.tax_ids import au_abn, ca_business_number, eu_vat_number, gb_vat_number
from invoicing.tax.territories import (
    CA_HST_PROVINCES,
    CA_PROVINCES,
    CA_PROVINCIAL_TAX,
    EU_MEMBER_STATES,
    US_STATES,
    iso_countries,
    vat_area,
)

__all__ = ["EU_OSS", "Reasons", "RulesTaxProvider"]

# Registration code for the EU One Stop Shop (Union or non-Union scheme).
EU_OSS = "EU-OSS"

_ZERO = Decimal(0)


class Reasons:
    """Reason texts recorded on the lines. Legal mentions are quoted where an invoice needs one
    (the EU reverse charge mention is required by Article 226(11a), Council Directive 2006/112/EC)."""

    EU_REVERSE_CHARGE = (
        "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council Directive 2006/112/EC)"
    )
    OUTSIDE_EU = (
        "Outside the scope of EU VAT: the customer is established outside the EU "
        "(place of supply, Articles 44 and 58, Council Directive 2006/112/EC)"
    )
    OUTSIDE_UK = "Outside the scope of UK VAT: the place of supply is outside the UK"
    UK_REVERSE_CHARGE = "Reverse charge: the customer accounts for UK VAT (VAT Act 1994, section 8)"
    EXEMPT = "Tax exempt: {reference}"
    NONTAXABLE = "Not subject to tax: the line's tax code is 'nontaxable'"
    NOT_REGISTERED = "Seller not registered for {tax} in {where}: no {tax} charged"
    DOMESTIC_VAT = "VAT at the standard rate of {country}"
    EU_B2C_DESTINATION = (
        "VAT of the customer's member state {country} (place of supply, Article 58, Council Directive 2006/112/EC)"
    )
    EU_B2C_ORIGIN = (
        "VAT of the seller's member state {country}: cross-border sales to consumers below the EU threshold "
        "of EUR 10,000 (Article 59c, Council Directive 2006/112/EC)"
    )
    EU_INVALID_VAT_NUMBER = "VAT number {tax_id} is not a valid {country} VAT number: taxed as a sale to a consumer. "
    EU_BUSINESS_WITHOUT_NUMBER = "Business customer without a {country} VAT number: taxed as a sale to a consumer. "
    UK_VAT = "UK VAT at the standard rate"
    AU_GST = "Australian GST"
    AU_OFFSHORE_B2B = (
        "Not subject to Australian GST: offshore supply to an Australian business (ABN {abn}); "
        "the recipient accounts for any GST under the reverse charge"
    )
    CA_PLACE_OF_SUPPLY = "{tax}, place of supply {jurisdiction}"
    CA_NONRESIDENT_B2B = (
        "{tax} not charged: non-resident vendor under the simplified regime supplying a registrant "
        "(business number {number})"
    )
    US_NO_NEXUS = "No US sales tax nexus in {state}"
    US_NO_STATE_TAX = "No state sales tax in {state}"
    US_NOT_TAXABLE = "Product not taxable in {state} ({source})"
    US_STATE_TAX = "{state} state sales tax (state rate only; local sales taxes are not included)"


class _Regime(StrEnum):
    EU = "EU"
    GB = "GB"
    AU = "AU"
    CA = "CA"
    US = "US"
    OTHER = "OTHER"


# Registrations the rules understand besides EU member states and US states with nexus.
_OTHER_REGISTRATIONS = frozenset({EU_OSS, "GB", "AU", "CA"} | {f"CA-{p}" for p in CA_PROVINCIAL_TAX})


@dataclass(frozen=True, slots=True)
class _Place:
    """The customer's validated location: `area` is its VAT area (Monaco -> FR) and `region`
    the US state / Canadian province (None elsewhere)."""

    area: str
    region: str | None
    regime: _Regime

    @property
    def jurisdiction(self) -> str:
        return f"{self.area}-{self.region}" if self.region else self.area

    @property
    def tax_name(self) -> TaxName:
        if self.regime in (_Regime.EU, _Regime.GB):
            return TaxName.VAT
        if self.regime is _Regime.AU:
            return TaxName.GST
        if self.regime is _Regime.CA:
            return TaxName.HST if self.region in CA_HST_PROVINCES else TaxName.GST
        if self.regime is _Regime.US:
            return TaxName.SALES_TAX
        return TaxName.TAX


@dataclass(frozen=True, slots=True)
class _Levy:
    """One component of a plan: the tax to apply to every line of one tax code."""

    name: TaxName
    jurisdiction: str
    rate: Decimal
    reason: str


class RulesTaxProvider:
    """The built-in `TaxProvider`: rules in code, rates as dated data (`RateTable`, by default the
    table shipped in rates.toml). Pure: no database, clock or network."""

    def __init__(self, table: RateTable | None = None) -> None:
        self._table = table if table is not None else builtin_rate_table()

    def tax_lines(
        self,
        *,
        settings: TaxSettings,
        customer: TaxCustomer,
        lines: Sequence[TaxLineInput],
        at: datetime,
    ) -> list[LineResult]:
        """One `LineResult` per input line, in order. Raises `TaxError` before computing anything
        when the settings, the customer's location or a line is unusable."""
        on = _supply_date(at)
        _check_settings(settings)
        place = _customer_place(customer)
        codes = [_tax_code(line) for line in lines]
        _check_lines(lines)
        plans: dict[TaxCode, tuple[_Levy, ...]] = {}
        for code in codes:
            if code not in plans:
                plans[code] = self._plan(settings=settings, customer=customer, place=place, code=code, on=on)
        return [
            _apply(line, plans[code], inclusive=settings.prices_include_tax)
            for line, code in zip(lines, codes, strict=True)
        ]

    # -- the plan: which taxes apply ---------------------------------------------------------

    def _plan(
        self, *, settings: TaxSettings, customer: TaxCustomer, place: _Place, code: TaxCode, on: date
    ) -> tuple[_Levy, ...]:
        if customer.exempt:
            reason = Reasons.EXEMPT.format(reference=customer.exemption_reference.strip())
            return (_Levy(place.tax_name, place.jurisdiction, _ZERO, reason),)
        if code is TaxCode.NONTAXABLE:
            return (_Levy(place.tax_name, place.jurisdiction, _ZERO, Reasons.NONTAXABLE),)
        rules = {
            _Regime.EU: self._eu,
            _Regime.GB: self._gb,
            _Regime.AU: self._au,
            _Regime.CA: self._ca,
            _Regime.US: self._us,
            _Regime.OTHER: self._other,
        }
        levies = rules[place.regime](settings=settings, customer=customer, place=place, code=code, on=on)
        # A VAT invoice of an EU (UK) seller must say why a supply abroad bears none of its VAT.
        origin = vat_area(settings.origin_country)
        home = _Regime.EU if origin in EU_MEMBER_STATES else _Regime.GB if origin == "GB" else None
        if home is not None and home is not place.regime:
            mention = Reasons.OUTSIDE_EU if home is _Regime.EU else Reasons.OUTSIDE_UK
            levies = tuple(replace(lv, reason=f"{mention}; {lv.reason}") if lv.rate == 0 else lv for lv in levies)
        return levies

    def _rate(self, jurisdiction: str, tax: TaxName, code: TaxCode, on: date) -> Decimal:
        return self._table.rate(jurisdiction, tax, on=on, tax_code=code)

    def _charged(self, tax: TaxName, jurisdiction: str, code: TaxCode, on: date, reason: str) -> _Levy:
        return _Levy(tax, jurisdiction, self._rate(jurisdiction, tax, code, on), reason)

    def _eu(
        self, *, settings: TaxSettings, customer: TaxCustomer, place: _Place, code: TaxCode, on: date
    ) -> tuple[_Levy, ...]:
        country, origin, registered = place.area, vat_area(settings.origin_country), settings.registrations
        vat = TaxName.VAT
        if origin == country:
            if country in registered:
                return (self._charged(vat, country, code, on, Reasons.DOMESTIC_VAT.format(country=country)),)
            return (_Levy(vat, country, _ZERO, Reasons.NOT_REGISTERED.format(tax="VAT", where=country)),)
        if eu_vat_number(customer.tax_id, country) is not None:
            return (_Levy(vat, country, _ZERO, Reasons.EU_REVERSE_CHARGE),)
        # B2C, or a business whose number does not check out: charging VAT is the safe side (a
        # reverse charge without a valid number leaves the seller liable for the VAT).
        note = ""
        if customer.tax_id:
            note = Reasons.EU_INVALID_VAT_NUMBER.format(tax_id=customer.tax_id.strip(), country=country)
        elif customer.is_business:
            note = Reasons.EU_BUSINESS_WITHOUT_NUMBER.format(country=country)
        if EU_OSS in registered or country in registered:
            return (self._charged(vat, country, code, on, note + Reasons.EU_B2C_DESTINATION.format(country=country)),)
        if origin in EU_MEMBER_STATES and origin in registered:
            # An EU seller neither registered for OSS nor in the customer's state is taken to be
            # under the EUR 10,000 threshold; past it, the tenant must register for OSS.
            return (self._charged(vat, origin, code, on, note + Reasons.EU_B2C_ORIGIN.format(country=origin)),)
        where = f"{country} (no OSS registration)"
        return (_Levy(vat, country, _ZERO, note + Reasons.NOT_REGISTERED.format(tax="VAT", where=where)),)

    def _gb(
        self, *, settings: TaxSettings, customer: TaxCustomer, place: _Place, code: TaxCode, on: date
    ) -> tuple[_Levy, ...]:
        registered = "GB" in settings.registrations
        not_registered = _Levy(TaxName.VAT, "GB", _ZERO, Reasons.NOT_REGISTERED.format(tax="VAT", where="GB"))
        if vat_area(settings.origin_country) == "GB":
            return (self._charged(TaxName.VAT, "GB", code, on, Reasons.UK_VAT),) if registered else (not_registered,)
        # From abroad, a business customer (number or not: UK businesses under the registration
        # threshold have none) accounts for the VAT itself; the seller only records why.
        if customer.is_business or gb_vat_number(customer.tax_id) is not None:
            return (_Levy(TaxName.VAT, "GB", _ZERO, Reasons.UK_REVERSE_CHARGE),)
        return (self._charged(TaxName.VAT, "GB", code, on, Reasons.UK_VAT),) if registered else (not_registered,)

    def _au(
        self, *, settings: TaxSettings, customer: TaxCustomer, place: _Place, code: TaxCode, on: date
    ) -> tuple[_Levy, ...]:
        registered = "AU" in settings.registrations
        not_registered = _Levy(TaxName.GST, "AU", _ZERO, Reasons.NOT_REGISTERED.format(tax="GST", where="AU"))
        if settings.origin_country != "AU":
            # Simplification: a valid-format ABN is taken as the customer's statement that it is
            # registered for GST, which is what lets an offshore supplier leave GST out.
            abn = au_abn(customer.tax_id)
            if abn is not None:
                return (_Levy(TaxName.GST, "AU", _ZERO, Reasons.AU_OFFSHORE_B2B.format(abn=abn)),)
        return (self._charged(TaxName.GST, "AU", code, on, Reasons.AU_GST),) if registered else (not_registered,)

    def _ca(
        self, *, settings: TaxSettings, customer: TaxCustomer, place: _Place, code: TaxCode, on: date
    ) -> tuple[_Levy, ...]:
        province = place.region
        assert province is not None  # _customer_place requires it for Canada
        registered = settings.registrations
        hst = province in CA_HST_PROVINCES
        federal, federal_jurisdiction = (TaxName.HST, f"CA-{province}") if hst else (TaxName.GST, "CA")
        # Non-resident vendors under the simplified GST/HST (and QST) regime do not charge
        # registrants. Simplification: a valid business number stands for both registrations.
        number = ca_business_number(customer.tax_id) if settings.origin_country != "CA" else None
        levies: list[_Levy] = []
        if "CA" not in registered:
            reason = Reasons.NOT_REGISTERED.format(tax="GST/HST", where="CA")
            levies.append(_Levy(federal, federal_jurisdiction, _ZERO, reason))
        elif number is not None:
            reason = Reasons.CA_NONRESIDENT_B2B.format(tax="GST/HST", number=number)
            levies.append(_Levy(federal, federal_jurisdiction, _ZERO, reason))
        else:
            reason = Reasons.CA_PLACE_OF_SUPPLY.format(tax=federal.value, jurisdiction=f"CA-{province}")
            levies.append(self._charged(federal, federal_jurisdiction, code, on, reason))
        provincial_name = CA_PROVINCIAL_TAX.get(province)
        jurisdiction = f"CA-{province}"
        # Provincial taxes only where the seller registered for them; PST and RST are retail
        # sales taxes that businesses pay too, so only QST follows the registrant rule above.
        if provincial_name is not None and jurisdiction in registered:
            provincial = TaxName(provincial_name)
            if provincial is TaxName.QST and number is not None:
                reason = Reasons.CA_NONRESIDENT_B2B.format(tax="QST", number=number)
                levies.append(_Levy(provincial, jurisdiction, _ZERO, reason))
            else:
                reason = Reasons.CA_PLACE_OF_SUPPLY.format(tax=provincial.value, jurisdiction=jurisdiction)
                levies.append(self._charged(provincial, jurisdiction, code, on, reason))
        return tuple(levies)

    def _us(
        self, *, settings: TaxSettings, customer: TaxCustomer, place: _Place, code: TaxCode, on: date
    ) -> tuple[_Levy, ...]:
        state = place.region
        assert state is not None  # _customer_place requires it for the US
        jurisdiction, tax = f"US-{state}", TaxName.SALES_TAX
        if jurisdiction not in settings.registrations:
            return (_Levy(tax, jurisdiction, _ZERO, Reasons.US_NO_NEXUS.format(state=state)),)
        rate = self._rate(jurisdiction, tax, code, on)
        if rate == 0:
            return (_Levy(tax, jurisdiction, _ZERO, Reasons.US_NO_STATE_TAX.format(state=state)),)
        if state in settings.us_taxability:
            taxable, source = settings.us_taxability[state], "tenant taxability setting"
        elif state in self._table.us_saas_taxable:
            taxable, source = self._table.us_saas_taxable[state], "built-in default"
        else:
            raise TaxError(TaxErrorCode.INVALID_RATE_TABLE, f"The rate table has no default taxability for {state}.")
        if not taxable:
            return (_Levy(tax, jurisdiction, _ZERO, Reasons.US_NOT_TAXABLE.format(state=state, source=source)),)
        return (_Levy(tax, jurisdiction, rate, Reasons.US_STATE_TAX.format(state=state)),)

    def _other(
        self, *, settings: TaxSettings, customer: TaxCustomer, place: _Place, code: TaxCode, on: date
    ) -> tuple[_Levy, ...]:
        # Registrations the rules do not model are refused in _check_settings, so the seller is
        # not registered here.
        reason = Reasons.NOT_REGISTERED.format(tax="tax", where=place.area)
        return (_Levy(TaxName.TAX, place.area, _ZERO, reason),)


# -- validation ------------------------------------------------------------------------------


def _supply_date(at: object) -> date:
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise TaxError(TaxErrorCode.INVALID_DATE, f"`at` must be an aware datetime, not {at!r}.")
    # The calendar date in `at`'s own zone: callers pass UTC (CONVENTIONS), or the same instant
    # in a jurisdiction's zone to follow its local midnight at a rate change.
    return at.date()


def _check_settings(settings: TaxSettings) -> None:
    if settings.origin_country not in iso_countries():
        raise TaxError(
            TaxErrorCode.INVALID_SETTINGS, f"Origin country {settings.origin_country!r} is not an ISO 3166-1 code."
        )
    for registration in sorted(settings.registrations):
        if registration in EU_MEMBER_STATES or registration in _OTHER_REGISTRATIONS:
            continue
        if registration.startswith("US-") and registration[3:] in US_STATES:
            continue
        if registration.startswith("CA-") and registration[3:] in CA_PROVINCES:
            raise TaxError(
                TaxErrorCode.INVALID_SETTINGS,
                f"Registration {registration!r}: only BC, SK, MB and QC have a provincial tax; "
                "GST/HST is collected under the 'CA' registration.",
            )
        if registration in iso_countries():
            raise TaxError(
                TaxErrorCode.UNSUPPORTED_JURISDICTION,
                f"The built-in tax rules do not cover {registration}, where the seller is registered.",
            )
        raise TaxError(TaxErrorCode.INVALID_SETTINGS, f"Unknown registration {registration!r}.")
    for state in settings.us_taxability:
        if state not in US_STATES:
            raise TaxError(TaxErrorCode.INVALID_SETTINGS, f"US taxability override for unknown state {state!r}.")


def _customer_place(customer: TaxCustomer) -> _Place:
    country = (customer.country or "").strip().upper()
    if not country:
        raise TaxError(TaxErrorCode.CUSTOMER_LOCATION_REQUIRED, "The customer's country is required to compute tax.")
    if country not in iso_countries():
        raise TaxError(TaxErrorCode.UNKNOWN_COUNTRY, f"{customer.country!r} is not an ISO 3166-1 country code.")
    if customer.exempt and not customer.exemption_reference.strip():
        raise TaxError(
            TaxErrorCode.EXEMPTION_REFERENCE_REQUIRED, "An exempt customer needs the reference of its exemption."
        )
    area = vat_area(country)
    if area in EU_MEMBER_STATES:
        return _Place(area, None, _Regime.EU)
    if area in ("GB", "AU"):
        return _Place(area, None, _Regime(area))
    if country in ("US", "CA"):
        regions, what = (US_STATES, "state") if country == "US" else (CA_PROVINCES, "province or territory")
        region = (customer.region or "").strip().upper().removeprefix(f"{country}-")
        if not region:
            raise TaxError(
                TaxErrorCode.CUSTOMER_LOCATION_REQUIRED, f"The customer's {what} is required to compute {country} tax."
            )
        if region not in regions:
            raise TaxError(TaxErrorCode.UNKNOWN_REGION, f"{customer.region!r} is not a {country} {what} code.")
        return _Place(country, region, _Regime(country))
    return _Place(area, None, _Regime.OTHER)


def _tax_code(line: TaxLineInput) -> TaxCode:
    if line.tax_code is None:
        return TaxCode.SAAS
    try:
        return TaxCode(line.tax_code)
    except ValueError:
        raise TaxError(
            TaxErrorCode.UNKNOWN_TAX_CODE, f"Line {line.key!r}: unknown tax code {line.tax_code!r}."
        ) from None


def _check_lines(lines: Sequence[TaxLineInput]) -> None:
    keys: set[str] = set()
    currencies = {line.currency for line in lines}
    for line in lines:
        amount = line.amount
        if not isinstance(amount, Decimal) or not amount.is_finite():
            raise TaxError(TaxErrorCode.INVALID_LINE, f"Line {line.key!r}: amount must be a finite Decimal.")
        try:
            rounded = round_money(amount, line.currency)
        except UnknownCurrencyError as error:
            raise TaxError(TaxErrorCode.INVALID_LINE, f"Line {line.key!r}: {error}") from error
        if rounded != amount:
            raise TaxError(
                TaxErrorCode.INVALID_LINE,
                f"Line {line.key!r}: {amount} is not rounded to the minor unit of {line.currency}.",
            )
        if line.key in keys:
            raise TaxError(TaxErrorCode.INVALID_LINE, f"Duplicate line key {line.key!r}.")
        keys.add(line.key)
    if len(currencies) > 1:
        raise TaxError(
            TaxErrorCode.CURRENCY_MISMATCH, f"An invoice's lines share one currency, not {sorted(currencies)}."
        )


# -- amounts ---------------------------------------------------------------------------------


def _apply(line: TaxLineInput, plan: tuple[_Levy, ...], *, inclusive: bool) -> LineResult:
    amount = round_money(line.amount, line.currency)  # uniform exponent: 5 USD -> 5.00
    net, taxes = line_split(amount, line.currency, [levy.rate for levy in plan], inclusive=inclusive)
    with localcontext(exact_context()):
        tax_total = sum(taxes, round_money(_ZERO, line.currency))
        gross = amount if inclusive else net + tax_total
    components = tuple(
        LineTax(
            name=levy.name.value,
            jurisdiction=levy.jurisdiction,
            rate=levy.rate,
            taxable_amount=net,
            amount=tax,
            reason=levy.reason,
        )
        for levy, tax in zip(plan, taxes, strict=True)
    )
    return LineResult(
        key=line.key,
        currency=line.currency,
        net_amount=net,
        tax_amount=tax_total,
        gross_amount=gross,
        taxes=components,
    )
