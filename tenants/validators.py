from __future__ import annotations

import zoneinfo

from babel import Locale
from babel.numbers import list_currencies
from django.core.exceptions import ValidationError

_CURRENCIES = frozenset(list_currencies())

# CLDR (through babel) names every ISO 3166-1 alpha-2 country, plus codes that are not countries:
# ISO's exceptional reservations (AC, CP, DG, EA, EU, EZ, IC, TA, UN), the transitional CQ, and
# CLDR's private-use QO, XA, XB, ZZ ("Unknown Region"). XK (Kosovo, user-assigned in ISO) stays:
# the EU, SWIFT and Stripe use it.
_NOT_COUNTRIES = frozenset({"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"})
COUNTRIES = frozenset(
    code for code in Locale("en").territories if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
)


def validate_currency(value: str) -> None:
    """ISO 4217 code known to babel (which also knows each currency's minor unit)."""
    if value not in _CURRENCIES:
        raise ValidationError(f"{value!r} is not an ISO 4217 currency code.", code="invalid_currency")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone.", code="invalid_timezone")


def validate_country(value: str) -> None:
    """An ISO 3166-1 alpha-2 country code, upper case (DE, US; not ZZ or EU)."""
    if value not in COUNTRIES:
        raise ValidationError(
            f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. DE, US).", code="invalid_country"
        )
