"""Columns of the Django admin as finance reads them: an amount formatted in its currency (babel,
the staff pages' `money` filter) instead of the column's four stored decimals, and a snapshot of a
party as its postal address instead of raw JSON."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.contrib import admin
from django.utils.html import format_html_join

from billing.templatetags.money import money


def money_display(field: str, *, currency: str = "currency", label: str | None = None) -> Callable:
    """A ModelAdmin method (`total_display = money_display("total")`) showing `field` in the row's
    `currency` column, sortable by the amount."""

    @admin.display(description=label or field.replace("_", " "), ordering=field)
    def show(model_admin, obj) -> str:
        return money(getattr(obj, field), getattr(obj, currency))

    show.__name__ = f"{field}_display"
    return show


def lines_display(lines: Iterable[str]) -> str:
    """Lines of an address, one under the other (escaped)."""
    return format_html_join("", "{}<br>", ((line,) for line in lines)) or "—"
