from __future__ import annotations

import zoneinfo

from babel.numbers import list_currencies
from django.core.exceptions import ValidationError

_CURRENCIES = frozenset(list_currencies())


def validate_currency(value: str) -> None:
    """ISO 4217 code known to babel (which also knows each currency's minor unit)."""
    if value not in _CURRENCIES:
        raise ValidationError(f"{value!r} is not an ISO 4217 currency code.", code="invalid_currency")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone.", code="invalid_timezone")
