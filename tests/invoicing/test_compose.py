"""invoicing.compose: tax per line on the line net of its discounts, dated by the customer's
local date; no database."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.bill import Bill, BillLine
from core.money import Money
from invoicing.compose import TaxContext, invoice_compose
from invoicing.tax import RulesTaxProvider, TaxCustomer, TaxSettings

D = Decimal


def eur(amount):
    return Money(D(amount), "EUR")


POINT = datetime(2024, 12, 31, 23, tzinfo=UTC)  # Jan 1 2025, 00:00 in Bratislava


def line(kind="base_fee", amount="100.00", discounts_line=None):
    return BillLine(
        kind=kind,
        description=kind,
        amount=Money(D(amount), "EUR"),
        period_start=POINT,
        period_end=POINT,
        billing_period_start=POINT,
        billing_period_end=POINT,
        discounts_line=discounts_line,
    )


def compose(timezone, *lines):
    bill = Bill(subscription_id=1, point=POINT, currency="EUR", lines=tuple(lines), timezone=timezone)
    tax = TaxContext(
        provider=RulesTaxProvider(),
        settings=TaxSettings(origin_country="SK", registrations=frozenset({"SK"})),
        customer=TaxCustomer(country="SK", is_business=True),
    )
    return invoice_compose(bill, tax=tax)


@pytest.mark.parametrize(("timezone", "rate", "tax"), [("Europe/Bratislava", "23", "23.00"), ("UTC", "20", "20.00")])
def test_the_date_of_supply_is_the_customers_local_date(timezone, rate, tax):
    # Slovakia's VAT went from 20 % to 23 % on 2025-01-01: the instant is still 2024 in UTC
    [drafted] = compose(timezone, line()).lines
    assert (drafted.tax_rate, drafted.tax_amount, drafted.tax_jurisdiction) == (D(rate), eur(tax), "SK")


def test_tax_is_on_the_line_net_of_its_discounts_which_carry_its_rate_and_no_tax():
    draft = compose("Europe/Bratislava", line(), line("discount", "-40.00", discounts_line=0))
    fee, discount = draft.lines
    # 23 % of 60.00 = 13.80 on the fee line; the discount line only shows the rate
    assert (fee.net_amount, fee.tax_amount) == (eur("60.00"), eur("13.80"))
    assert (discount.net_amount, discount.tax_amount, discount.tax_rate, discount.tax_jurisdiction) == (
        eur("0"),
        eur("0"),
        D("23"),
        "SK",
    )
    assert (draft.subtotal, draft.tax_total, draft.total) == (eur("60.00"), eur("13.80"), eur("73.80"))
