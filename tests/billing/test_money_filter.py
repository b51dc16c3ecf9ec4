"""The `money` template filter shows amounts in the currency's own format (babel, en_US)."""

from decimal import Decimal

import pytest
from django.template import Context, Template


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (Decimal("499.0000"), "USD", "$499.00"),
        (Decimal("-20.0050"), "USD", "-$20.01"),  # half-up at the minor unit
        (Decimal("1200.0000"), "JPY", "¥1,200"),
        (Decimal("1.2500"), "KWD", "KWD1.250"),
        (Decimal("1234567.8900"), "EUR", "€1,234,567.89"),
        (None, "USD", ""),
        ("n/a", "USD", "n/a USD"),  # not a number: shown as given, never a server error
    ],
)
def test_money_filter(amount, currency, shown):
    rendered = Template("{% load money %}{{ amount|money:currency }}").render(
        Context({"amount": amount, "currency": currency})
    )
    assert rendered == shown
