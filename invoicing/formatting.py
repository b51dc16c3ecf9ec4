"""How invoice documents write money, numbers, rates and dates, and the seller's colours: one
place for the PDF, the void stamp and the email.

Money is formatted with babel from the stored Decimals (already rounded to the currency's minor
unit; unit prices keep their precision), never through float. The locale is `DEFAULT_LOCALE`
("en_US"): neither tenants nor organizations have a locale field yet; dates are shown in the
organization's timezone ("1 Apr 2027"). A period [start, end) is printed inclusively: its last
day is the day of the last instant before `end`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

DEFAULT_LOCALE = "en_US"
DATE_FORMAT = "d MMM y"  # 1 Apr 2027
DEFAULT_COLORS = ("#1f4b99", "#f2a900")  # the Tenant model's defaults
HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass
class Fmt:
    """How invoice documents (PDF, email) write figures: babel, in the invoice's currency and the
    organization's zone, from the stored Decimals (never through float)."""

    currency: str
    locale: str
    zone: ZoneInfo

    def money(self, value: Decimal | None) -> str:
        if value is None:
            return ""
        return format_currency(value, self.currency, locale=self.locale)

    def unit(self, value: Decimal | None) -> str:
        # Unit prices keep their precision (0.00002): at least the currency's digits, never rounded.
        if value is None:
            return ""
        return format_currency(value, self.currency, locale=self.locale, decimal_quantization=False)

    def number(self, value: Decimal | None) -> str:
        if value is None:
            return ""
        return format_decimal(value.normalize(), format="#,##0.###", locale=self.locale, decimal_quantization=False)

    def percent(self, rate: Decimal | None) -> str:
        # `rate` is in percent (Decimal("19") is 19 %).
        if rate is None:
            return ""
        return format_percent(rate / 100, format="#,##0.###%", locale=self.locale, decimal_quantization=False)

    def date(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return format_date(value.astimezone(self.zone).date(), DATE_FORMAT, locale=self.locale)

    def period(self, start: datetime | None, end: datetime | None) -> str:
        if start is None or end is None:
            return ""
        last = max(start, end - _ONE_MICROSECOND)
        first_text, last_text = self.date(start), self.date(last)
        return first_text if first_text == last_text else f"{first_text} \u2013 {last_text}"


def invoice_fmt(invoice) -> Fmt:
    """The formatter of one invoice: its currency, the organization's zone (UTC if it has none)."""
    return Fmt(currency=invoice.currency, locale=DEFAULT_LOCALE, zone=ZoneInfo(invoice.organization.timezone or "UTC"))
