"""Package pricing: per started block after free units; nothing for zero billable units."""

from decimal import Decimal

import pytest

from billing.pricing import BreakdownItem, price_charge

D = Decimal

PACKAGE = {"model": "package", "package_size": "1000", "package_amount": "5.00", "free_units": "0"}
WITH_FREE = {"model": "package", "package_size": "1000", "package_amount": "5.00", "free_units": "200"}


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", "0"),  # no block started
        ("1", "5.00"),  # one started block
        ("999", "5.00"),
        ("1000", "5.00"),  # exactly one full block
        ("1001", "10.00"),  # one past: a second block started
        ("2000", "10.00"),
        ("0.001", "5.00"),  # a fraction of a unit starts a block too
        ("1000.5", "10.00"),
    ],
)
def test_package_totals(quantity, expected):
    assert price_charge(PACKAGE, D(quantity)).amount == D(expected)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", "0"),
        ("200", "0"),  # all absorbed by free units: zero billable units cost nothing
        ("200.5", "5.00"),
        ("1200", "5.00"),
        ("1201", "10.00"),
    ],
)
def test_package_free_units(quantity, expected):
    assert price_charge(WITH_FREE, D(quantity)).amount == D(expected)


def test_package_breakdown():
    result = price_charge(WITH_FREE, D(2500))
    assert result.breakdown == [
        BreakdownItem("free_units", None, D(200), D(0), D(0), D(0)),
        BreakdownItem("packages", None, D(3), D("5.00"), D(0), D("15.00")),
    ]


def test_package_breakdown_when_usage_is_below_the_free_units():
    result = price_charge(WITH_FREE, D(50))
    assert result.breakdown[0].quantity == D(50)
    assert result.breakdown[1].quantity == D(0)


def test_fractional_package_size():
    # 0.25 GB blocks: 1.1 GB starts 5 blocks (4 full, 1 partial).
    price = {"model": "package", "package_size": "0.25", "package_amount": "0.10"}
    assert price_charge(price, D("1.1")).amount == D("0.50")
    assert price_charge(price, D("1.0")).amount == D("0.40")


def test_package_size_not_dividing_evenly():
    # 1/3 is not a finite decimal; the block count must still be exact.
    price = {"model": "package", "package_size": "3", "package_amount": "1"}
    assert price_charge(price, D(10)).amount == D(4)
    assert price_charge(price, D(9)).amount == D(3)
