"""The tax engine: a small interface and a built-in rules provider over a dated rate table.

Pure Python: no database, models, clock or network, so every rule is a plain function of its
inputs and trivially testable. Invoicing calls a `TaxProvider`; `RulesTaxProvider` is the built-in
one, and a provider backed by an external service (Stripe Tax, Avalara) can implement the same
protocol.

Interface (invoicing.tax.interface)
- `TaxSettings(origin_country, registrations=frozenset(), prices_include_tax=False,
  us_taxability={})`: the seller's position; registration codes are listed on the class.
- `TaxCustomer(country, region=None, tax_id=None, is_business=False, exempt=False,
  exemption_reference="")`.
- `TaxLineInput(key, amount, currency, tax_code=None)`: amount a Decimal already rounded to the
  currency's minor unit, negative for credit lines; `tax_code` a `TaxCode` ("saas", the default,
  or "nontaxable").
- `TaxProvider.tax_lines(*, settings, customer, lines, at) -> list[LineResult]`; `at` is the
  aware datetime of the date of supply and picks the rates in force on its calendar date.
- `LineResult(key, currency, net_amount, tax_amount, gross_amount, taxes)`: `taxes` is a tuple of
  `LineTax(name, jurisdiction, rate, taxable_amount, amount, reason)`, at least one per line (a
  line that bears no tax still records a 0 rate, its jurisdiction and why). Canada can give two
  components (GST + PST/RST/QST), each rounded on its own.
- `TaxError(code, message)` with `TaxErrorCode` stable codes (customer_location_required,
  unknown_country, unknown_region, exemption_reference_required, invalid_settings,
  unsupported_jurisdiction, rate_not_found, invalid_line, currency_mismatch, unknown_tax_code,
  invalid_date, invalid_rate_table). The engine refuses rather than guesses.

Rates (rates.toml, read by invoicing.tax.rates.RateTable)
Data with effective dates: jurisdiction, tax, rate (decimal string, percent), valid_from
(inclusive), valid_to (exclusive), optional tax_code. Standard rates of the 27 EU member states
with their 2024-2025 changes, UK VAT, Australian GST, Canadian GST / HST / PST / RST / QST, and
US state-level sales tax rates for the 50 states and DC, plus the default US SaaS taxability map.
The table covers dates of supply from its `coverage_from` (2024-01-01); sources and unverified
points are commented in the file.

Rules (RulesTaxProvider), in order
1. An exempt customer: 0 % with "Tax exempt: <reference>". A "nontaxable" line: 0 %.
2. EU customer (Monaco counts as FR):
   - seller established in the same member state: that state's VAT if the seller is registered
     there, else none (VAT-exempt small business);
   - cross-border, customer with a valid-format VAT number of its own member state (python-stdnum,
     prefix checked, EL for Greece): 0 %, reverse charge, Article 196 mention;
   - cross-border otherwise (consumer, or a business whose number is missing or malformed -- taxed
     as a consumer, since a reverse charge without a valid number leaves the seller liable; the
     reason says so): the customer's state's VAT if the seller is registered for OSS ("EU-OSS")
     or in that state; else, for an EU seller registered at home, its home VAT (the EUR 10,000
     threshold is modelled by the registration: below it the tenant does not register for OSS);
     else none ("not registered").
3. UK customer (the Isle of Man counts as GB): a UK seller charges 20 % if registered; a foreign
   seller charges nothing to a business (the customer reverse-charges; `is_business` suffices,
   as small UK businesses have no VAT number) and 20 % to consumers if registered in GB.
4. Australia: a registered resident seller charges 10 % GST; an offshore seller charges nothing to
   a customer with a valid-format ABN (taken, as a simplification, as its statement of GST
   registration) and 10 % to consumers if registered.
5. Canada (province required): a GST/HST-registered seller ("CA") charges HST at the province's
   rate in NB, NL, NS, ON, PE and GST 5 % elsewhere; plus PST (BC, SK), RST (MB) or QST (QC) where
   registered for it ("CA-BC" …). A non-resident seller does not charge GST/HST or QST to a
   customer with a valid business number (simplified regime; the number stands for both
   registrations), PST/RST still apply.
6. US (state required): the state's rate only if the seller has nexus there ("US-NY" in the
   registrations) and the product is taxable in the state (tenant override, else the built-in
   default map); else 0 % with the reason. State-level rates only: local taxes are not modelled.
   Taxability is one bool per state (business vs personal use distinctions are not modelled);
   Texas (80 % of the price) and Connecticut (1 %) SaaS rates are special entries of the table.
7. Elsewhere: registrations outside these rules are refused (unsupported_jurisdiction), so the
   seller is not registered there and charges nothing.
An EU (UK) seller's untaxed line for a customer outside the EU (UK) starts its reason with the
"outside the scope of EU (UK) VAT" mention.

Amounts (invoicing.tax.amounts)
Per line, per component, rounded half-up to the currency's minor unit through
core.money.round_money (JPY 0, USD 2, KWD 3 digits; ties away from zero, so credits mirror
debits). Exclusive: tax = round(net * rate / 100). Inclusive: with R the sum of the line's rates,
each tax = round(gross * rate / (100 + R)) and net = gross - sum(taxes), so the gross is kept
exactly (100.00 EUR at 19 % -> 84.03 net + 15.97 tax).

Not modelled (documented simplifications): US local taxes and origin sourcing; registration
thresholds other than through the registrations given; reduced rates; special territories other
than Monaco and the Isle of Man; online checks of tax ids (VIES, HMRC, ABN Lookup) -- format only.
"""

from invoicing.tax.errors import TaxError, TaxErrorCode
from invoicing.tax.interface import (
    LineResult,
    LineTax,
    TaxCode,
    TaxCustomer,
    TaxLineInput,
    TaxName,
    TaxProvider,
    TaxSettings,
)
from invoicing.tax.rates import RateEntry, RateTable, builtin_rate_table
from invoicing.tax.rules import EU_OSS, Reasons, RulesTaxProvider

__all__ = [
    "EU_OSS",
    "LineResult",
    "LineTax",
    "RateEntry",
    "RateTable",
    "Reasons",
    "RulesTaxProvider",
    "TaxCode",
    "TaxCustomer",
    "TaxError",
    "TaxErrorCode",
    "TaxLineInput",
    "TaxName",
    "TaxProvider",
    "TaxSettings",
    "builtin_rate_table",
]
