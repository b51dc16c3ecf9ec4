"""Per-line tax arithmetic: exact half-up rounding per component, gross kept for inclusive prices."""

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from core.money import minor_units, round_money
from invoicing.tax import RulesTaxProvider, TaxCustomer, TaxLineInput, TaxSettings
from invoicing.tax.amounts import line_split

D = Decimal
FAST = settings(max_examples=300, deadline=None)

# Rate sets a line can carry: single rates with awkward decimals, and Canada's pairs.
RATE_SETS = [
    (D("19"),),
    (D("25.5"),),
    (D("6.875"),),
    (D("4.225"),),
    (D("0"),),
    (D("5"), D("7")),
    (D("5"), D("9.975")),
    (D("13"),),
]
CURRENCIES = ["JPY", "USD", "EUR", "KWD"]


def half_up(value: Fraction, places: int) -> Decimal:
    """Reference rounding on exact rationals: half away from zero to `places` decimals."""
    scaled = value * 10**places
    whole, remainder = divmod(abs(scaled.numerator), scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        whole += 1
    return D(-whole if scaled < 0 else whole).scaleb(-places)


@st.composite
def lines(draw):
    currency = draw(st.sampled_from(CURRENCIES))
    places = minor_units(currency)
    units = draw(st.integers(min_value=-(10**12), max_value=10**12))
    return D(units).scaleb(-places), currency, draw(st.sampled_from(RATE_SETS))


@FAST
@given(lines())
def test_inclusive_net_plus_taxes_is_the_gross_exactly(line):
    gross, currency, rates = line
    net, taxes = line_split(gross, currency, rates, inclusive=True)
    assert net + sum(taxes) == gross
    total = 100 + sum(Fraction(r) for r in rates)
    for rate, tax in zip(rates, taxes, strict=True):
        assert tax == half_up(Fraction(gross) * Fraction(rate) / total, minor_units(currency))
        assert tax.as_tuple().exponent == -minor_units(currency)


@FAST
@given(lines())
def test_exclusive_tax_is_the_rounded_rate_of_the_net_for_every_component(line):
    net_in, currency, rates = line
    net, taxes = line_split(net_in, currency, rates, inclusive=False)
    assert net == net_in
    for rate, tax in zip(rates, taxes, strict=True):
        assert tax == round_money(net * rate / 100, currency)
        assert tax == half_up(Fraction(net) * Fraction(rate) / 100, minor_units(currency))


@FAST
@given(st.integers(min_value=-(10**9), max_value=10**9), st.booleans())
def test_provider_lines_add_up(cents, inclusive):
    # Through the provider: Quebec, two components, either pricing mode.
    seller = TaxSettings(origin_country="CA", registrations=frozenset({"CA", "CA-QC"}), prices_include_tax=inclusive)
    amount = D(cents).scaleb(-2)
    [result] = RulesTaxProvider().tax_lines(
        settings=seller,
        customer=TaxCustomer("CA", region="QC"),
        lines=[TaxLineInput("l", amount, "CAD")],
        at=datetime(2025, 6, 1, tzinfo=UTC),
    )
    assert result.tax_amount == sum(c.amount for c in result.taxes)
    assert result.gross_amount == result.net_amount + result.tax_amount
    assert (result.gross_amount if inclusive else result.net_amount) == amount
    if not inclusive:
        assert [c.amount for c in result.taxes] == [
            half_up(Fraction(amount) * Fraction(c.rate) / 100, 2) for c in result.taxes
        ]


def test_inclusive_examples():
    assert line_split(D("100.00"), "EUR", [D("19")], inclusive=True) == (D("84.03"), (D("15.97"),))
    assert line_split(D("119.00"), "EUR", [D("19")], inclusive=True) == (D("100.00"), (D("19.00"),))
    # 1000 JPY at 10 %: 90.909… -> 91
    assert line_split(D("1000"), "JPY", [D("10")], inclusive=True) == (D("909"), (D("91"),))


def test_exclusive_tie_rounds_half_up():
    assert line_split(D("1.25"), "USD", [D("10")], inclusive=False) == (D("1.25"), (D("0.13"),))
    assert line_split(D("-1.25"), "USD", [D("10")], inclusive=False) == (D("-1.25"), (D("-0.13"),))


def test_non_terminating_shares_round_like_exact_rationals():
    # 10.05 * 25.5 / 125.5 has no finite decimal expansion; the provider's rounding must agree
    # with exact rational arithmetic.
    gross = D("10.05")
    net, (tax,) = line_split(gross, "USD", [D("25.5")], inclusive=True)
    assert tax == half_up(Fraction(gross) * Fraction("25.5") / Fraction("125.5"), 2) == D("2.04")
    assert net == D("8.01")
