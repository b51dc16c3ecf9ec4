"""`{{ amount|money:currency }}`, or `{{ a_money|money }}` for a Money: an amount as people read
it in that currency (babel, en_US as the invoice PDFs use until there is a locale setting):
`$499.00`, `¥1,200`, `KWD 1.250`. Stored amounts keep four decimals; shown ones are rounded half-up
to the currency's minor unit."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from babel.numbers import format_currency
from django import template

from core.money import Money, UnknownCurrencyError, round_money

register = template.Library()


@register.filter
def money(amount, currency: str | None = None) -> str:
    if amount is None or amount == "":
        return ""
    if isinstance(amount, Money):
        amount, currency = amount.amount, amount.currency
    try:
        value = Decimal(str(amount))
        return format_currency(round_money(value, currency), currency, locale="en_US")
    except (InvalidOperation, UnknownCurrencyError, ValueError):
        return f"{amount} {currency}"
