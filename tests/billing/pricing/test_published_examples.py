"""Worked examples from Stripe's and Lago's public documentation, with the results they state.

Stripe writes amounts in minor units (unit_amount=700 is 7 USD) and the open tier as
up_to="inf"; our documents carry major-unit decimal strings and up_to null. The semantics of
these examples are otherwise identical unless a comment says how they differ.
"""

from decimal import Decimal

import pytest

from billing.pricing import price_charge

D = Decimal

# https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing — Typographic's font tiers:
# 1-5 at 7 USD, 6-10 at 6.5 USD, 11+ at 6 USD (up_to 5, 10, inf).
TYPOGRAPHIC_TIERS = [
    {"up_to": "5", "unit_amount": "7"},
    {"up_to": "10", "unit_amount": "6.5"},
    {"up_to": None, "unit_amount": "6"},
]


@pytest.mark.parametrize(
    ("fonts", "total"),
    # Stripe's "Volume-based pricing" table: 1 -> 7, 5 -> 35, 6 -> 39, 20 -> 120, 25 -> 150 USD.
    [(1, "7"), (5, "35"), (6, "39"), (20, "120"), (25, "150")],
)
def test_stripe_volume_typographic(fonts, total):
    # https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing#volume-based-pricing
    assert price_charge({"model": "volume", "tiers": TYPOGRAPHIC_TIERS}, D(fonts)).amount == D(total)


@pytest.mark.parametrize(
    ("fonts", "total"),
    # Stripe's "Graduated pricing" table: 1 -> 7, 5 -> 35, 6 -> 41.5, 20 -> 127.5, 25 -> 157.5 USD.
    [(1, "7"), (5, "35"), (6, "41.5"), (20, "127.5"), (25, "157.5")],
)
def test_stripe_graduated_typographic(fonts, total):
    # https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing#graduated-pricing
    assert price_charge({"model": "graduated", "tiers": TYPOGRAPHIC_TIERS}, D(fonts)).amount == D(total)


# https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing — "Add a flat rate": five
# tiers with unit 5/4/3/2/1 USD and flat 10/20/30/40/50 USD, up_to 5, 10, 15, 20, inf.
FLAT_RATE_TIERS = [
    {"up_to": "5", "unit_amount": "5", "flat_amount": "10"},
    {"up_to": "10", "unit_amount": "4", "flat_amount": "20"},
    {"up_to": "15", "unit_amount": "3", "flat_amount": "30"},
    {"up_to": "20", "unit_amount": "2", "flat_amount": "40"},
    {"up_to": None, "unit_amount": "1", "flat_amount": "50"},
]


def test_stripe_volume_flat_rate_example():
    # Stated: quantity 12, volume: 12 x 3 USD + 30 USD = 66 USD.
    assert price_charge({"model": "volume", "tiers": FLAT_RATE_TIERS}, D(12)).amount == D(66)


def test_stripe_graduated_flat_rate_example():
    # Stated: quantity 12, graduated: (5 x 5 + 10) + (5 x 4 + 20) + (2 x 3 + 30) = 111 USD.
    result = price_charge({"model": "graduated", "tiers": FLAT_RATE_TIERS}, D(12))
    assert result.amount == D(111)
    assert [item.amount for item in result.breakdown] == [D(35), D(40), D(36)]


@pytest.mark.parametrize("model", ["volume", "graduated"])
def test_stripe_zero_quantity_bills_the_first_flat_rate(model):
    # Stated: "If quantity is 0, the total amount is 10 USD regardless of the tiered pricing
    # model used. Stripe always bills the first flat rate tier when quantity=0."
    assert price_charge({"model": model, "tiers": FLAT_RATE_TIERS}, D(0)).amount == D(10)


def test_lago_standard_example():
    # https://doc.getlago.com/guide/plans/charges/charge-models/standard — stated: 0.05 USD per
    # API call, 1,000 calls = 50 USD. Lago's "standard" is our per_unit.
    assert price_charge({"model": "per_unit", "unit_amount": "0.05"}, D(1000)).amount == D(50)


def test_lago_volume_example():
    # https://docs.getlago.com/guide/plans/charges/charge-models/volume — stated: tiers 0-10,000
    # at 0.0010, 10,001-50,000 at 0.0008, 50,001-100,000 at 0.0006, 100,001+ at 0.0004, each with
    # a 10 USD "fixed fee" (our flat_amount); 65,000 calls = 65,000 x 0.0006 + 10 = 49 USD.
    # Lago writes inclusive integer ranges ("10,001") where we write inclusive upper bounds.
    price = {
        "model": "volume",
        "tiers": [
            {"up_to": "10000", "unit_amount": "0.0010", "flat_amount": "10"},
            {"up_to": "50000", "unit_amount": "0.0008", "flat_amount": "10"},
            {"up_to": "100000", "unit_amount": "0.0006", "flat_amount": "10"},
            {"up_to": None, "unit_amount": "0.0004", "flat_amount": "10"},
        ],
    }
    assert price_charge(price, D(65000)).amount == D(49)


def test_lago_package_example():
    # https://getlago.com/docs/guide/plans/charges/charge-models/package — stated: 5 USD per 100
    # units with the first 100 free; 201 units = 0 (first 100) + 5 (next 100) + 5 (last unit)
    # = 10 USD.
    price = {"model": "package", "package_size": "100", "package_amount": "5", "free_units": "100"}
    result = price_charge(price, D(201))
    assert result.amount == D(10)
    assert result.breakdown[1].quantity == D(2)  # two started packages


def test_lago_percentage_example():
    # https://getlago.com/docs/guide/plans/charges/charge-models/percentage — stated: rate 1.2 %,
    # fixed fee 0.10 USD per transaction, first 3 events or 500 USD free; transactions of 200,
    # 100 and 100 cost nothing, and the fourth, of 50, costs 0.10 x 1 + 1.2 % of 50 = 0.70 USD
    # (the free events ran out first, although only 450 of the 500 free value was reached).
    #
    # Difference in wording, not in this result: Lago describes free events as waiving the fixed
    # fee and the free amount as waiving the rate, each on its own; we treat an event as wholly
    # free (rate and fixed fee) while BOTH allowances remain, which is the behaviour this table
    # shows. See billing.pricing.percentage for the full rule.
    price = {
        "model": "percentage",
        "rate": "1.2",
        "fixed_amount": "0.10",
        "free_events": 3,
        "free_amount": "500",
        "min_amount_per_event": None,
        "max_amount_per_event": None,
    }
    events = [D(200), D(100), D(100), D(50)]
    first_three = price_charge(price, D(400), event_values=events[:3])
    assert first_three.amount == D(0)
    result = price_charge(price, D(450), event_values=events)
    assert result.amount == D("0.70")
