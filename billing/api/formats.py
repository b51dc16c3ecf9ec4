"""How billing's API writes numbers, instants and bills."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

from billing.bill import Bill, BillLine
from billing.line_json import breakdown_json, proration_json
from core.errors import DomainError


def decimal_text(value: Decimal | None) -> str | None:
    """Plain notation without a column's padding: 100.0000000000 -> "100", never "1E+2"."""
    return None if value is None else format(value.normalize(), "f")


def amount_text(value: Decimal) -> str:
    """A rounded amount with its currency's decimals as they are ("20.00", "323")."""
    return format(value, "f")


def instant_text(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# RFC 3339 with an offset, ASCII digits only (\d would take other scripts' digits).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# Instants the API takes lie in these years, in the offset they are written in and in UTC: years
# past 9999 do not exist for Python (a +14:00 offset on 9999-12-31 overflows converting to UTC),
# and no billing date lies outside this range.
INSTANT_MIN_YEAR, INSTANT_MAX_YEAR = 1900, 9000


def instant_parse(value: str | None, *, field: str) -> datetime | None:
    """An RFC 3339 instant with an offset (DRF would silently read a time without one as UTC),
    between the years INSTANT_MIN_YEAR and INSTANT_MAX_YEAR; DomainError `invalid_datetime`."""
    if value is None:
        return None
    parsed = None
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        try:
            parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError:  # a day or hour that does not exist: 2027-02-30, 25:00
            parsed = None
    if parsed is None:
        raise DomainError(
            f"{field} must be RFC 3339 with an offset, e.g. 2027-01-01T00:00:00Z.", code="invalid_datetime"
        )
    # Checked in the written offset first, so converting to UTC cannot overflow.
    if not INSTANT_MIN_YEAR <= parsed.year <= INSTANT_MAX_YEAR or not (
        INSTANT_MIN_YEAR <= parsed.astimezone(UTC).year <= INSTANT_MAX_YEAR
    ):
        raise DomainError(
            f"{field} must lie between the years {INSTANT_MIN_YEAR} and {INSTANT_MAX_YEAR}.", code="invalid_datetime"
        )
    return parsed


def bill_line_out(line: BillLine) -> dict:
    return {
        "kind": line.kind,
        "description": line.description,
        "amount": amount_text(line.amount.amount),
        "currency": line.currency,
        "quantity": decimal_text(line.quantity),
        "unit_amount": decimal_text(line.unit_amount),
        "period_start": instant_text(line.period_start),
        "period_end": instant_text(line.period_end),
        "billing_period_start": instant_text(line.billing_period_start),
        "billing_period_end": instant_text(line.billing_period_end),
        "proration": proration_json(line.proration),
        "meter": line.meter_code,
        "group": line.group,
        "coupon_redemption": line.coupon_redemption_id,
        "discounts_line": line.discounts_line,
        "breakdown": breakdown_json(line.breakdown, text=decimal_text),
    }


def bill_out(bill: Bill) -> dict:
    return {
        "at": instant_text(bill.point),
        "currency": bill.currency,
        "subtotal": amount_text(bill.subtotal.rounded().amount),
        "lines": [bill_line_out(line) for line in bill.lines],
    }
