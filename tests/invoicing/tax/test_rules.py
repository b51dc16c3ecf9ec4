"""RulesTaxProvider: each rule with exact amounts, rates, jurisdictions and reason texts."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from invoicing.tax import (
    LineResult,
    LineTax,
    RulesTaxProvider,
    TaxCustomer,
    TaxError,
    TaxLineInput,
    TaxProvider,
    TaxSettings,
)

D = Decimal
AT = datetime(2025, 6, 1, 12, tzinfo=UTC)
PROVIDER = RulesTaxProvider()

REVERSE_CHARGE = "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council Directive 2006/112/EC)"
OUTSIDE_EU = (
    "Outside the scope of EU VAT: the customer is established outside the EU "
    "(place of supply, Articles 44 and 58, Council Directive 2006/112/EC)"
)
EU_B2C_FR = "VAT of the customer's member state FR (place of supply, Article 58, Council Directive 2006/112/EC)"

# Valid-format numbers (check digits pass), from python-stdnum's documentation and tests.
FR_VAT = "FR40303265045"
DE_VAT = "DE136695976"
GR_VAT = "EL094259216"
GB_VAT = "GB980780684"
AU_ABN = "51 824 753 556"
CA_BN = "123456782RT0001"

DE_SELLER = TaxSettings(origin_country="DE", registrations=frozenset({"DE", "EU-OSS"}))


def tax(settings, customer, amount="100.00", currency="EUR", *, at=AT, tax_code=None) -> LineResult:
    [result] = PROVIDER.tax_lines(
        settings=settings,
        customer=customer,
        lines=[TaxLineInput("line-1", D(amount), currency, tax_code)],
        at=at,
    )
    return result


def error_code(settings, customer, lines=None, at=AT) -> str:
    lines = lines if lines is not None else [TaxLineInput("line-1", D("100.00"), "EUR")]
    with pytest.raises(TaxError) as caught:
        PROVIDER.tax_lines(settings=settings, customer=customer, lines=lines, at=at)
    return caught.value.code


def only(result: LineResult) -> LineTax:
    [component] = result.taxes
    return component


def test_provider_satisfies_the_protocol():
    provider: TaxProvider = PROVIDER
    assert provider.tax_lines(settings=DE_SELLER, customer=TaxCustomer("DE"), lines=[], at=AT) == []


# ---- EU ---------------------------------------------------------------------------------------


def test_domestic_vat_de_to_de():
    result = tax(DE_SELLER, TaxCustomer("DE", tax_id=DE_VAT, is_business=True))
    assert result == LineResult(
        key="line-1",
        currency="EUR",
        net_amount=D("100.00"),
        tax_amount=D("19.00"),
        gross_amount=D("119.00"),
        taxes=(LineTax("VAT", "DE", D("19"), D("100.00"), D("19.00"), "VAT at the standard rate of DE"),),
    )


def test_domestic_seller_not_vat_registered_charges_nothing():
    small_business = TaxSettings(origin_country="DE")
    component = only(tax(small_business, TaxCustomer("DE")))
    assert (component.rate, component.amount) == (D("0"), D("0.00"))
    assert component.reason == "Seller not registered for VAT in DE: no VAT charged"


def test_cross_border_b2b_with_valid_vat_number_is_reverse_charged():
    result = tax(DE_SELLER, TaxCustomer("FR", tax_id=FR_VAT, is_business=True))
    assert result.taxes == (LineTax("VAT", "FR", D("0"), D("100.00"), D("0.00"), REVERSE_CHARGE),)
    assert (result.tax_amount, result.gross_amount) == (D("0.00"), D("100.00"))


@pytest.mark.parametrize("tax_id", ["FR 40 303 265 045", "fr40303265045", "40303265045"])
def test_vat_number_spacing_case_and_missing_prefix_are_accepted(tax_id):
    assert only(tax(DE_SELLER, TaxCustomer("FR", tax_id=tax_id))).reason == REVERSE_CHARGE


def test_greek_vat_numbers_use_the_el_prefix():
    assert only(tax(DE_SELLER, TaxCustomer("GR", tax_id=GR_VAT))).reason == REVERSE_CHARGE
    # The same digits under the ISO prefix are not a Greek VAT number.
    component = only(tax(DE_SELLER, TaxCustomer("GR", tax_id="GR094259216")))
    assert (component.rate, component.amount) == (D("24"), D("24.00"))


def test_malformed_vat_number_is_taxed_as_b2c_and_says_why():
    component = only(tax(DE_SELLER, TaxCustomer("FR", tax_id="FR123", is_business=True)))
    assert (component.jurisdiction, component.rate, component.amount) == ("FR", D("20"), D("20.00"))
    assert (
        component.reason == "VAT number FR123 is not a valid FR VAT number: taxed as a sale to a consumer. " + EU_B2C_FR
    )


def test_vat_number_of_another_member_state_is_not_a_reverse_charge():
    # A German number for a French customer: the supply is received in France.
    component = only(tax(DE_SELLER, TaxCustomer("FR", tax_id=DE_VAT, is_business=True)))
    assert (component.rate, component.amount) == (D("20"), D("20.00"))
    assert component.reason.startswith("VAT number DE136695976 is not a valid FR VAT number")


def test_business_without_vat_number_is_taxed_as_b2c():
    component = only(tax(DE_SELLER, TaxCustomer("FR", is_business=True)))
    assert component.amount == D("20.00")
    assert component.reason == "Business customer without a FR VAT number: taxed as a sale to a consumer. " + EU_B2C_FR


def test_cross_border_b2c_with_oss_charges_the_customer_country_rate():
    assert only(tax(DE_SELLER, TaxCustomer("FR"))) == LineTax("VAT", "FR", D("20"), D("100.00"), D("20.00"), EU_B2C_FR)


def test_cross_border_b2c_registered_in_the_customer_state_without_oss():
    settings = TaxSettings(origin_country="DE", registrations=frozenset({"DE", "FR"}))
    assert only(tax(settings, TaxCustomer("FR"))).amount == D("20.00")


def test_cross_border_b2c_below_threshold_charges_the_home_rate():
    home_only = TaxSettings(origin_country="DE", registrations=frozenset({"DE"}))
    component = only(tax(home_only, TaxCustomer("FR")))
    assert (component.jurisdiction, component.rate, component.amount) == ("DE", D("19"), D("19.00"))
    assert component.reason == (
        "VAT of the seller's member state DE: cross-border sales to consumers below the EU threshold "
        "of EUR 10,000 (Article 59c, Council Directive 2006/112/EC)"
    )


def test_monaco_is_in_the_french_vat_area():
    assert only(tax(DE_SELLER, TaxCustomer("MC"))) == LineTax("VAT", "FR", D("20"), D("100.00"), D("20.00"), EU_B2C_FR)
    assert only(tax(DE_SELLER, TaxCustomer("MC", tax_id=FR_VAT))).reason == REVERSE_CHARGE


def test_eu_seller_to_non_eu_customer_is_outside_the_scope():
    france = TaxSettings(origin_country="FR", registrations=frozenset({"FR"}))
    result = tax(france, TaxCustomer("US", region="NY"), "100.00", "USD")
    assert result.taxes == (
        LineTax("Sales tax", "US-NY", D("0"), D("100.00"), D("0.00"), OUTSIDE_EU + "; No US sales tax nexus in NY"),
    )
    assert result.gross_amount == D("100.00")
    component = only(tax(france, TaxCustomer("JP"), "100", "JPY"))
    assert (component.name, component.jurisdiction, component.amount) == ("Tax", "JP", D("0"))
    assert component.reason == OUTSIDE_EU + "; Seller not registered for tax in JP: no tax charged"


def test_non_eu_seller_b2c_registered_for_oss():
    us_seller = TaxSettings(origin_country="US", registrations=frozenset({"EU-OSS", "US-NY"}))
    assert only(tax(us_seller, TaxCustomer("FR"))) == LineTax("VAT", "FR", D("20"), D("100.00"), D("20.00"), EU_B2C_FR)


def test_non_eu_seller_b2c_not_registered_charges_nothing():
    us_seller = TaxSettings(origin_country="US", registrations=frozenset({"US-NY"}))
    component = only(tax(us_seller, TaxCustomer("FR")))
    assert (component.rate, component.amount) == (D("0"), D("0.00"))
    assert component.reason == "Seller not registered for VAT in FR (no OSS registration): no VAT charged"


def test_non_eu_seller_b2b_is_reverse_charged():
    us_seller = TaxSettings(origin_country="US", registrations=frozenset({"EU-OSS"}))
    assert only(tax(us_seller, TaxCustomer("DE", tax_id=DE_VAT))).reason == REVERSE_CHARGE


def test_uk_seller_to_eu_business_carries_both_mentions():
    uk_seller = TaxSettings(origin_country="GB", registrations=frozenset({"GB"}))
    component = only(tax(uk_seller, TaxCustomer("FR", tax_id=FR_VAT)))
    assert component.reason == "Outside the scope of UK VAT: the place of supply is outside the UK; " + REVERSE_CHARGE


@pytest.mark.parametrize(
    ("country", "day", "rate", "amount"),
    [
        ("FI", date(2024, 8, 31), "24", "24.00"),
        ("FI", date(2024, 9, 1), "25.5", "25.50"),
        ("SK", date(2024, 12, 31), "20", "20.00"),
        ("SK", date(2025, 1, 1), "23", "23.00"),
        ("EE", date(2025, 6, 30), "22", "22.00"),
        ("EE", date(2025, 7, 1), "24", "24.00"),
        ("RO", date(2025, 7, 31), "19", "19.00"),
        ("RO", date(2025, 8, 1), "21", "21.00"),
    ],
)
def test_rate_changes_follow_the_date_of_supply(country, day, rate, amount):
    settings = TaxSettings(origin_country=country, registrations=frozenset({country}))
    at = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC)
    component = only(tax(settings, TaxCustomer(country), at=at))
    assert (component.rate, component.amount) == (D(rate), D(amount))


def test_the_date_is_read_in_the_zone_of_at():
    # 2024-08-31 22:30 UTC is already 2024-09-01 in Helsinki (UTC+3 in summer).
    settings = TaxSettings(origin_country="FI", registrations=frozenset({"FI"}))
    instant = datetime(2024, 8, 31, 22, 30, tzinfo=UTC)
    assert only(tax(settings, TaxCustomer("FI"), at=instant)).rate == D("24")
    helsinki = instant.astimezone(timezone(timedelta(hours=3)))
    assert only(tax(settings, TaxCustomer("FI"), at=helsinki)).rate == D("25.5")


# ---- UK, Australia ------------------------------------------------------------------------------


def test_uk_domestic():
    uk_seller = TaxSettings(origin_country="GB", registrations=frozenset({"GB"}))
    assert only(tax(uk_seller, TaxCustomer("GB"), "100.00", "GBP")) == LineTax(
        "VAT", "GB", D("20"), D("100.00"), D("20.00"), "UK VAT at the standard rate"
    )


def test_uk_customer_of_a_foreign_seller():
    us_seller = TaxSettings(origin_country="US", registrations=frozenset({"GB"}))
    uk_reverse = "Reverse charge: the customer accounts for UK VAT (VAT Act 1994, section 8)"
    assert only(tax(us_seller, TaxCustomer("GB", tax_id=GB_VAT), currency="GBP")).reason == uk_reverse
    # A small UK business has no VAT number; its business status is enough.
    assert only(tax(us_seller, TaxCustomer("GB", is_business=True), currency="GBP")).amount == D("0.00")
    assert only(tax(us_seller, TaxCustomer("GB"), currency="GBP")).amount == D("20.00")
    unregistered = TaxSettings(origin_country="US")
    assert only(tax(unregistered, TaxCustomer("GB"), currency="GBP")).reason == (
        "Seller not registered for VAT in GB: no VAT charged"
    )


def test_eu_seller_to_uk_business():
    component = only(tax(DE_SELLER, TaxCustomer("GB", tax_id=GB_VAT), currency="GBP"))
    assert (
        component.reason == OUTSIDE_EU + "; Reverse charge: the customer accounts for UK VAT (VAT Act 1994, section 8)"
    )


def test_australian_gst():
    au_seller = TaxSettings(origin_country="AU", registrations=frozenset({"AU"}))
    # A resident supplier charges GST to businesses too.
    assert only(tax(au_seller, TaxCustomer("AU", tax_id=AU_ABN), "100.00", "AUD")) == LineTax(
        "GST", "AU", D("10"), D("100.00"), D("10.00"), "Australian GST"
    )


def test_offshore_seller_to_australia():
    us_seller = TaxSettings(origin_country="US", registrations=frozenset({"AU"}))
    b2b = only(tax(us_seller, TaxCustomer("AU", tax_id=AU_ABN), "100.00", "AUD"))
    assert (b2b.rate, b2b.amount) == (D("0"), D("0.00"))
    assert b2b.reason == (
        "Not subject to Australian GST: offshore supply to an Australian business (ABN 51824753556); "
        "the recipient accounts for any GST under the reverse charge"
    )
    assert only(tax(us_seller, TaxCustomer("AU"), "100.00", "AUD")).amount == D("10.00")
    assert only(tax(us_seller, TaxCustomer("AU", tax_id="12 345 678 901"), "100.00", "AUD")).amount == D("10.00")


# ---- Canada -------------------------------------------------------------------------------------

CA_SELLER = TaxSettings(origin_country="CA", registrations=frozenset({"CA", "CA-BC", "CA-QC", "CA-SK", "CA-MB"}))


def test_ontario_hst():
    assert tax(CA_SELLER, TaxCustomer("CA", region="ON"), "100.00", "CAD").taxes == (
        LineTax("HST", "CA-ON", D("13"), D("100.00"), D("13.00"), "HST, place of supply CA-ON"),
    )


def test_british_columbia_gst_and_pst_are_rounded_each():
    # 5 % of 10.10 is 0.505 -> 0.51 and 7 % is 0.707 -> 0.71: 1.22, where 12 % at once would be 1.21.
    result = tax(CA_SELLER, TaxCustomer("CA", region="BC"), "10.10", "CAD")
    assert result.taxes == (
        LineTax("GST", "CA", D("5"), D("10.10"), D("0.51"), "GST, place of supply CA-BC"),
        LineTax("PST", "CA-BC", D("7"), D("10.10"), D("0.71"), "PST, place of supply CA-BC"),
    )
    assert (result.tax_amount, result.gross_amount) == (D("1.22"), D("11.32"))


def test_quebec_gst_and_qst():
    result = tax(CA_SELLER, TaxCustomer("CA", region="QC"), "100.00", "CAD")
    assert result.taxes == (
        LineTax("GST", "CA", D("5"), D("100.00"), D("5.00"), "GST, place of supply CA-QC"),
        # 9.975 exactly: a tie, rounded up.
        LineTax("QST", "CA-QC", D("9.975"), D("100.00"), D("9.98"), "QST, place of supply CA-QC"),
    )
    assert result.gross_amount == D("114.98")


def test_manitoba_rst_and_saskatchewan_pst():
    mb = tax(CA_SELLER, TaxCustomer("CA", region="MB"), "100.00", "CAD")
    assert [(c.name, c.jurisdiction, c.amount) for c in mb.taxes] == [
        ("GST", "CA", D("5.00")),
        ("RST", "CA-MB", D("7.00")),
    ]
    sk = tax(CA_SELLER, TaxCustomer("CA", region="SK"), "100.00", "CAD")
    assert [(c.name, c.amount) for c in sk.taxes] == [("GST", D("5.00")), ("PST", D("6.00"))]


def test_provincial_tax_only_where_registered():
    gst_only = TaxSettings(origin_country="CA", registrations=frozenset({"CA"}))
    assert [c.name for c in tax(gst_only, TaxCustomer("CA", region="BC"), currency="CAD").taxes] == ["GST"]
    assert [c.name for c in tax(gst_only, TaxCustomer("CA", region="AB"), currency="CAD").taxes] == ["GST"]


@pytest.mark.parametrize(
    ("day", "rate", "amount"), [(date(2025, 3, 31), "15", "15.00"), (date(2025, 4, 1), "14", "14.00")]
)
def test_nova_scotia_hst_change(day, rate, amount):
    at = datetime(day.year, day.month, day.day, tzinfo=UTC)
    component = only(tax(CA_SELLER, TaxCustomer("CA", region="NS"), "100.00", "CAD", at=at))
    assert (component.name, component.jurisdiction, component.rate, component.amount) == (
        "HST",
        "CA-NS",
        D(rate),
        D(amount),
    )


def test_non_resident_seller_does_not_charge_canadian_registrants():
    us_seller = TaxSettings(origin_country="US", registrations=frozenset({"CA", "CA-QC", "CA-BC"}))
    qc = tax(us_seller, TaxCustomer("CA", region="QC", tax_id=CA_BN), "100.00", "CAD")
    assert [(c.name, c.rate, c.amount) for c in qc.taxes] == [("GST", D("0"), D("0.00")), ("QST", D("0"), D("0.00"))]
    assert qc.taxes[0].reason == (
        "GST/HST not charged: non-resident vendor under the simplified regime supplying a registrant "
        "(business number 123456782RT0001)"
    )
    # BC PST is a retail sales tax that businesses pay too.
    bc = tax(us_seller, TaxCustomer("CA", region="BC", tax_id=CA_BN), "100.00", "CAD")
    assert [(c.name, c.amount) for c in bc.taxes] == [("GST", D("0.00")), ("PST", D("7.00"))]
    consumer = tax(us_seller, TaxCustomer("CA", region="QC"), "100.00", "CAD")
    assert [c.amount for c in consumer.taxes] == [D("5.00"), D("9.98")]


def test_resident_seller_charges_canadian_registrants():
    component = tax(CA_SELLER, TaxCustomer("CA", region="ON", tax_id=CA_BN), "100.00", "CAD").taxes[0]
    assert component.amount == D("13.00")


def test_seller_not_registered_in_canada():
    us_seller = TaxSettings(origin_country="US")
    assert tax(us_seller, TaxCustomer("CA", region="ON"), currency="CAD").taxes == (
        LineTax(
            "HST",
            "CA-ON",
            D("0"),
            D("100.00"),
            D("0.00"),
            "Seller not registered for GST/HST in CA: no GST/HST charged",
        ),
    )


# ---- United States ------------------------------------------------------------------------------

US_SELLER = TaxSettings(
    origin_country="US",
    registrations=frozenset({"US-NY", "US-TX", "US-OR", "US-CA", "US-CT"}),
    us_taxability={"TX": False},
)


def test_new_york_with_nexus_and_taxable():
    assert only(tax(US_SELLER, TaxCustomer("US", region="NY"), "100.00", "USD")) == LineTax(
        "Sales tax",
        "US-NY",
        D("4"),
        D("100.00"),
        D("4.00"),
        "NY state sales tax (state rate only; local sales taxes are not included)",
    )


def test_region_may_carry_the_country_prefix():
    assert only(tax(US_SELLER, TaxCustomer("us", region=" us-ny "), "100.00", "USD")).amount == D("4.00")


def test_texas_with_nexus_but_tenant_marks_the_product_not_taxable():
    component = only(tax(US_SELLER, TaxCustomer("US", region="TX"), "100.00", "USD"))
    assert (component.rate, component.amount) == (D("0"), D("0.00"))
    assert component.reason == "Product not taxable in TX (tenant taxability setting)"


def test_texas_saas_default_is_80_percent_of_the_state_rate():
    settings = TaxSettings(origin_country="US", registrations=frozenset({"US-TX"}))
    assert only(tax(settings, TaxCustomer("US", region="TX"), "100.00", "USD")).rate == D("5")


def test_connecticut_taxes_saas_at_one_percent():
    assert only(tax(US_SELLER, TaxCustomer("US", region="CT"), "100.00", "USD")).amount == D("1.00")


def test_california_without_nexus():
    us_seller = TaxSettings(origin_country="US", registrations=frozenset({"US-NY"}))
    assert only(tax(us_seller, TaxCustomer("US", region="CA"), "100.00", "USD")) == LineTax(
        "Sales tax", "US-CA", D("0"), D("100.00"), D("0.00"), "No US sales tax nexus in CA"
    )


def test_california_with_nexus_but_saas_not_taxable_by_default():
    assert only(tax(US_SELLER, TaxCustomer("US", region="CA"), "100.00", "USD")).reason == (
        "Product not taxable in CA (built-in default)"
    )


def test_tenant_override_can_make_a_state_taxable():
    settings = TaxSettings(origin_country="US", registrations=frozenset({"US-CA"}), us_taxability={"ca": True})
    assert only(tax(settings, TaxCustomer("US", region="CA"), "100.00", "USD")).amount == D("7.25")


def test_state_without_sales_tax():
    assert only(tax(US_SELLER, TaxCustomer("US", region="OR"), "100.00", "USD")).reason == "No state sales tax in OR"


# ---- exemptions, tax codes --------------------------------------------------------------------


def test_exempt_customer():
    customer = TaxCustomer("US", region="NY", exempt=True, exemption_reference="NY ST-119.1 #4411")
    assert only(tax(US_SELLER, customer, "100.00", "USD")) == LineTax(
        "Sales tax", "US-NY", D("0"), D("100.00"), D("0.00"), "Tax exempt: NY ST-119.1 #4411"
    )
    eu_customer = TaxCustomer("DE", exempt=True, exemption_reference="§ 4 Nr. 21 UStG")
    assert only(tax(DE_SELLER, eu_customer)).reason == "Tax exempt: § 4 Nr. 21 UStG"


def test_exempt_customer_needs_a_reference():
    assert (
        error_code(DE_SELLER, TaxCustomer("DE", exempt=True, exemption_reference="  "))
        == "exemption_reference_required"
    )


def test_nontaxable_lines_next_to_taxed_ones():
    lines = [
        TaxLineInput("subscription", D("100.00"), "EUR"),
        TaxLineInput("pass-through", D("50.00"), "EUR", "nontaxable"),
        TaxLineInput("usage", D("10.00"), "EUR", "saas"),
    ]
    results = PROVIDER.tax_lines(settings=DE_SELLER, customer=TaxCustomer("DE"), lines=lines, at=AT)
    assert [(r.key, r.tax_amount, r.gross_amount) for r in results] == [
        ("subscription", D("19.00"), D("119.00")),
        ("pass-through", D("0.00"), D("50.00")),
        ("usage", D("1.90"), D("11.90")),
    ]
    assert results[1].taxes[0].reason == "Not subject to tax: the line's tax code is 'nontaxable'"


# ---- amounts ------------------------------------------------------------------------------------

DE_INCLUSIVE = TaxSettings(origin_country="DE", registrations=frozenset({"DE"}), prices_include_tax=True)


def test_inclusive_price_keeps_the_gross():
    result = tax(DE_INCLUSIVE, TaxCustomer("DE"))
    assert (result.net_amount, result.tax_amount, result.gross_amount) == (D("84.03"), D("15.97"), D("100.00"))
    assert only(result).taxable_amount == D("84.03")


def test_inclusive_price_with_two_components():
    qc_inclusive = TaxSettings(origin_country="CA", registrations=frozenset({"CA", "CA-QC"}), prices_include_tax=True)
    result = tax(qc_inclusive, TaxCustomer("CA", region="QC"), "100.00", "CAD")
    # 100 * 5 / 114.975 = 4.3487… -> 4.35; 100 * 9.975 / 114.975 = 8.6758… -> 8.68.
    assert [c.amount for c in result.taxes] == [D("4.35"), D("8.68")]
    assert (result.net_amount, result.gross_amount) == (D("86.97"), D("100.00"))


def test_inclusive_reverse_charge_is_all_net():
    result = tax(DE_INCLUSIVE, TaxCustomer("FR", tax_id=FR_VAT))
    assert (result.net_amount, result.tax_amount, result.gross_amount) == (D("100.00"), D("0.00"), D("100.00"))


def test_credit_line_mirrors_the_debit():
    result = tax(CA_SELLER, TaxCustomer("CA", region="BC"), "-10.10", "CAD")
    assert [c.amount for c in result.taxes] == [D("-0.51"), D("-0.71")]
    assert (result.net_amount, result.tax_amount, result.gross_amount) == (D("-10.10"), D("-1.22"), D("-11.32"))
    inclusive = tax(DE_INCLUSIVE, TaxCustomer("DE"), "-100.00")
    assert (inclusive.net_amount, inclusive.tax_amount) == (D("-84.03"), D("-15.97"))


AU_SELLER = TaxSettings(origin_country="AU", registrations=frozenset({"AU"}))


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("1.25", "AUD", "0.13"),  # 0.125: the tie rounds up
        ("-1.25", "AUD", "-0.13"),  # and a credit's tie rounds away from zero too
        ("1.24", "AUD", "0.12"),
        ("1004", "JPY", "100"),  # 100.4
        ("1005", "JPY", "101"),  # 100.5
        ("0.005", "KWD", "0.001"),  # 0.0005
        ("12.344", "KWD", "1.234"),  # 1.2344
    ],
)
def test_rounding_per_currency_minor_unit_half_up(amount, currency, expected):
    result = tax(AU_SELLER, TaxCustomer("AU"), amount, currency)
    assert only(result).amount == D(expected)
    assert str(only(result).amount) == expected  # exactly the minor unit's places


def test_amounts_get_the_currency_exponent():
    result = tax(DE_SELLER, TaxCustomer("DE"), "5")
    assert (str(result.net_amount), str(result.tax_amount), str(result.gross_amount)) == ("5.00", "0.95", "5.95")
    assert str(tax(DE_SELLER, TaxCustomer("FR", tax_id=FR_VAT), "5").tax_amount) == "0.00"


def test_kwd_at_nineteen_percent():
    # 1.005 * 0.19 = 0.19095 -> 0.191
    assert tax(DE_SELLER, TaxCustomer("DE"), "1.005", "KWD").tax_amount == D("0.191")


# ---- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("country", [None, "", "  "])
def test_missing_country(country):
    assert error_code(DE_SELLER, TaxCustomer(country)) == "customer_location_required"


@pytest.mark.parametrize(("country", "region"), [("US", None), ("US", ""), ("CA", None)])
def test_missing_state_or_province(country, region):
    assert error_code(US_SELLER, TaxCustomer(country, region=region)) == "customer_location_required"


def test_unknown_country_and_region():
    assert error_code(DE_SELLER, TaxCustomer("XX")) == "unknown_country"
    assert error_code(DE_SELLER, TaxCustomer("EU")) == "unknown_country"
    assert error_code(US_SELLER, TaxCustomer("US", region="ZZ")) == "unknown_region"
    assert error_code(US_SELLER, TaxCustomer("US", region="PR")) == "unknown_region"
    assert error_code(CA_SELLER, TaxCustomer("CA", region="NY")) == "unknown_region"


def test_settings_errors():
    customer = TaxCustomer("DE")
    assert error_code(TaxSettings(origin_country="XX"), customer) == "invalid_settings"
    assert (
        error_code(TaxSettings(origin_country="CA", registrations=frozenset({"CA-ON"})), customer) == "invalid_settings"
    )
    assert (
        error_code(TaxSettings(origin_country="US", registrations=frozenset({"US-ZZ"})), customer) == "invalid_settings"
    )
    assert error_code(TaxSettings(origin_country="US", us_taxability={"ZZ": True}), customer) == "invalid_settings"
    assert error_code(TaxSettings(origin_country="JP", registrations=frozenset({"JP"})), customer) == (
        "unsupported_jurisdiction"
    )


def test_taxability_values_must_be_bools():
    with pytest.raises(TypeError):
        TaxSettings(origin_country="US", us_taxability={"TX": "false"})


def test_line_errors():
    customer = TaxCustomer("DE")
    assert error_code(DE_SELLER, customer, [TaxLineInput("a", 1.5, "EUR")]) == "invalid_line"
    assert error_code(DE_SELLER, customer, [TaxLineInput("a", D("1.005"), "EUR")]) == "invalid_line"
    assert error_code(DE_SELLER, customer, [TaxLineInput("a", D("NaN"), "EUR")]) == "invalid_line"
    assert error_code(DE_SELLER, customer, [TaxLineInput("a", D("1"), "XYZ")]) == "invalid_line"
    duplicate = [TaxLineInput("a", D("1"), "EUR"), TaxLineInput("a", D("2"), "EUR")]
    assert error_code(DE_SELLER, customer, duplicate) == "invalid_line"
    mixed = [TaxLineInput("a", D("1"), "EUR"), TaxLineInput("b", D("2"), "USD")]
    assert error_code(DE_SELLER, customer, mixed) == "currency_mismatch"
    assert error_code(DE_SELLER, customer, [TaxLineInput("a", D("1"), "EUR", "books")]) == "unknown_tax_code"


def test_date_errors():
    customer = TaxCustomer("DE")
    assert error_code(DE_SELLER, customer, at=datetime(2025, 6, 1)) == "invalid_date"  # naive
    assert error_code(DE_SELLER, customer, at=date(2025, 6, 1)) == "invalid_date"
    before_coverage = datetime(2023, 12, 31, tzinfo=UTC)
    assert error_code(DE_SELLER, customer, at=before_coverage) == "rate_not_found"


def test_error_carries_code_and_message():
    with pytest.raises(TaxError) as caught:
        PROVIDER.tax_lines(settings=DE_SELLER, customer=TaxCustomer(None), lines=[], at=AT)
    assert str(caught.value) == "The customer's country is required to compute tax. [customer_location_required]"
