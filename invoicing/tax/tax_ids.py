"""Format checks of customers' tax ids with python-stdnum (length, characters, check digits).

Format only: whether the number is currently registered is a question for VIES, HMRC, the ABN
Lookup or the CRA, which this pure engine does not ask. The caller may verify online when the
customer enters the number and store the outcome; a syntactically valid number is what the
rules here require.
"""

from __future__ import annotations

from stdnum.au import abn
from stdnum.ca import bn
from stdnum.eu import vat as eu_vat
from stdnum.gb import vat as gb_vat
from stdnum.util import clean

from invoicing.tax.territories import EU_VAT_PREFIX


def eu_vat_number(tax_id: str | None, country: str) -> str | None:
    """The customer's EU VAT number in compact form ("FR40303265045") if it is a valid-format
    number of `country` (an EU member state), else None.

    A number entered without its prefix gets `country`'s prefix (EL for Greece); a number with
    another country's prefix is not valid for `country`: reverse charge needs the number of the
    member state where the customer receives the supply.
    """
    if not tax_id:
        return None
    prefix = EU_VAT_PREFIX[country]
    # stdnum's compact() raises on an unknown prefix, so clean first, check after.
    number = clean(tax_id, " -./,").upper().strip()
    if number[:2].isdigit():
        number = prefix + number
    if number[:2] != prefix or not eu_vat.is_valid(number):
        return None
    return eu_vat.compact(number)


def gb_vat_number(tax_id: str | None) -> str | None:
    """A valid-format UK VAT number in compact form with its GB prefix, else None."""
    if not tax_id:
        return None
    number = gb_vat.compact(tax_id)
    # Northern Ireland traders quote their number with XI for goods; the number is the same.
    if number.startswith("XI"):
        number = number[2:]
    if not gb_vat.is_valid(number):
        return None
    return "GB" + number


def au_abn(tax_id: str | None) -> str | None:
    """A valid-format Australian Business Number (11 digits), else None."""
    if not tax_id or not abn.is_valid(tax_id):
        return None
    return abn.compact(tax_id)


def ca_business_number(tax_id: str | None) -> str | None:
    """A valid-format Canadian business number (9 digits, or 15 with a program account such as
    RT0001 for GST/HST), else None."""
    if not tax_id or not bn.is_valid(tax_id):
        return None
    number = bn.compact(tax_id)
    # A 15-character number names one program account; only RT is the GST/HST account.
    if len(number) == 15 and number[9:11] != "RT":
        return None
    return number
