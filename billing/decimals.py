"""Decimal strings as the API takes them: plain notation only ("49.00", "-1.5"), the same
spelling rule as price documents (billing.pricing.schema), so "1e2" or " 5" is refused with a
message rather than read as 100 or 5."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from tenants.errors import DomainError

_PLAIN = re.compile(r"^-?\d{1,20}(\.\d{1,12})?$")


def decimal_parse(value: Any, *, field: str, code: str = "invalid_amount") -> Decimal:
    """`value` as a Decimal: a Decimal passes; a string must be plain decimal notation."""
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if not isinstance(value, str) or not _PLAIN.match(value):
        raise DomainError(f'{field} must be a decimal string such as "49.00".', code=code)
    return Decimal(value)
