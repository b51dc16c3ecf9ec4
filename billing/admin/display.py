"""Columns of the Django admin as finance reads them: an amount formatted in its currency (babel,
the staff pages' `money` filter) instead of the column's four stored decimals, and a snapshot of a
party as its postal address instead of raw JSON."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from operator import attrgetter

from babel.numbers import format_currency, format_decimal
from django.contrib import admin
from django.utils.html import format_html_join

from billing.templatetags.money import money


def money_display(
    field: str, *, currency: str = "currency", label: str | None = None, precise: bool = False
) -> Callable:
    """A ModelAdmin method (`total_display = money_display("total")`) showing `field` in the row's
    `currency` (a dotted path for a related row's: "plan.currency"), sortable by the amount.
    `precise` keeps the digits a unit price has beyond the minor unit (0.0015 EUR is "€0.0015",
    not "€0.00"), without the stored trailing zeros."""

    @admin.display(description=label or field.replace("_", " "), ordering=field)
    def show(model_admin, obj) -> str:
        amount, code = getattr(obj, field), attrgetter(currency)(obj)
        if precise and amount is not None:
            return format_currency(_plain(amount), code, locale="en_US", decimal_quantization=False)
        return money(amount, code)

    show.__name__ = f"{field}_display"
    return show


def number_display(field: str, *, label: str | None = None, suffix: str = "") -> Callable:
    """A ModelAdmin method showing a stored decimal (a quantity, a tax rate in percent) with the
    digits it has, not the column's 4 or 12 (1.000000000000 is "1", 19.0000 "19 %")."""

    @admin.display(description=label or field.replace("_", " "), ordering=field)
    def show(model_admin, obj) -> str:
        value = getattr(obj, field)
        if value is None:
            return "—"
        return format_decimal(_plain(value), locale="en_US", decimal_quantization=False) + suffix

    show.__name__ = f"{field}_display"
    return show


def _plain(value: Decimal) -> Decimal:
    # normalize() without the exponent it gives whole numbers (30 → 3E+1)
    return value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize()


def lines_display(lines: Iterable[str]) -> str:
    """Lines of an address, one under the other (escaped)."""
    return format_html_join("", "{}<br>", ((line,) for line in lines)) or "—"
