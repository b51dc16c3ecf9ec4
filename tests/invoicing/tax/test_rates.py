"""The built-in rate table: complete, contiguous, and the dated facts it records."""

from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import pairwise

import pytest

from invoicing.tax import (
    RateTable,
    RulesTaxProvider,
    TaxCustomer,
    TaxError,
    TaxLineInput,
    TaxName,
    TaxSettings,
    builtin_rate_table,
)
from invoicing.tax.territories import CA_HST_PROVINCES, CA_PROVINCIAL_TAX, EU_MEMBER_STATES, US_STATES

D = Decimal
TABLE = builtin_rate_table()


def series(table: RateTable):
    grouped = {}
    for entry in table.entries:
        grouped.setdefault((entry.jurisdiction, entry.tax, entry.tax_code), []).append(entry)
    return {key: sorted(entries, key=lambda e: e.valid_from) for key, entries in grouped.items()}


def test_every_series_starts_at_coverage_and_has_no_gap():
    for key, entries in series(TABLE).items():
        assert entries[0].valid_from == TABLE.coverage_from, key
        for earlier, later in pairwise(entries):
            assert earlier.valid_to == later.valid_from, key


def test_only_louisiana_has_a_scheduled_end_without_successor():
    ended = {key for key, entries in series(TABLE).items() if entries[-1].valid_to is not None}
    assert ended == {("US-LA", TaxName.SALES_TAX, None)}


@pytest.mark.parametrize("on", [date(2024, 1, 1), date(2025, 6, 1), date(2026, 12, 31)])
def test_all_jurisdictions_have_a_rate(on):
    for country in EU_MEMBER_STATES:
        assert TABLE.rate(country, TaxName.VAT, on=on) >= 17
    assert TABLE.rate("GB", TaxName.VAT, on=on) == 20
    assert TABLE.rate("AU", TaxName.GST, on=on) == 10
    assert TABLE.rate("CA", TaxName.GST, on=on) == 5
    for province in CA_HST_PROVINCES:
        assert TABLE.rate(f"CA-{province}", TaxName.HST, on=on) >= 13
    for province, name in CA_PROVINCIAL_TAX.items():
        assert TABLE.rate(f"CA-{province}", TaxName(name), on=on) > 0
    for state in US_STATES:
        assert TABLE.rate(f"US-{state}", TaxName.SALES_TAX, on=on) >= 0


def test_eu_has_27_member_states_and_us_51_jurisdictions():
    assert len(EU_MEMBER_STATES) == 27
    assert len(US_STATES) == 51
    assert set(TABLE.us_saas_taxable) == US_STATES


def test_states_without_sales_tax():
    zero = {s for s in US_STATES if TABLE.rate(f"US-{s}", TaxName.SALES_TAX, on=date(2025, 6, 1)) == 0}
    assert zero == {"AK", "DE", "MT", "NH", "OR"}
    assert not any(TABLE.us_saas_taxable[s] for s in zero)


@pytest.mark.parametrize(
    ("jurisdiction", "tax", "before", "after", "change"),
    [
        ("FI", TaxName.VAT, "24", "25.5", date(2024, 9, 1)),
        ("SK", TaxName.VAT, "20", "23", date(2025, 1, 1)),
        ("EE", TaxName.VAT, "22", "24", date(2025, 7, 1)),
        ("RO", TaxName.VAT, "19", "21", date(2025, 8, 1)),
        ("CA-NS", TaxName.HST, "15", "14", date(2025, 4, 1)),
        ("US-LA", TaxName.SALES_TAX, "4.45", "5", date(2025, 1, 1)),
        ("US-DC", TaxName.SALES_TAX, "6", "6.5", date(2025, 10, 1)),
        ("US-SD", TaxName.SALES_TAX, "4.2", "4.5", date(2027, 7, 1)),
    ],
)
def test_dated_changes(jurisdiction, tax, before, after, change):
    assert TABLE.rate(jurisdiction, tax, on=date.fromordinal(change.toordinal() - 1)) == D(before)
    assert TABLE.rate(jurisdiction, tax, on=change) == D(after)


def test_standard_rates_on_a_day():
    on = date(2025, 9, 1)
    rates = {c: TABLE.rate(c, TaxName.VAT, on=on) for c in EU_MEMBER_STATES}
    assert rates == {
        "AT": 20, "BE": 21, "BG": 20, "HR": 25, "CY": 19, "CZ": 21, "DK": 25, "EE": 24, "FI": D("25.5"),
        "FR": 20, "DE": 19, "GR": 24, "HU": 27, "IE": 23, "IT": 22, "LV": 21, "LT": 21, "LU": 17,
        "MT": 18, "NL": 21, "PL": 23, "PT": 23, "RO": 21, "SK": 23, "SI": 22, "ES": 21, "SE": 25,
    }  # fmt: skip
    assert TABLE.rate("CA-QC", TaxName.QST, on=on) == D("9.975")


def test_tax_code_entry_wins_over_the_general_rate():
    on = date(2025, 6, 1)
    assert TABLE.rate("US-TX", TaxName.SALES_TAX, on=on) == D("6.25")
    assert TABLE.rate("US-TX", TaxName.SALES_TAX, on=on, tax_code="saas") == D("5")
    assert TABLE.rate("US-NY", TaxName.SALES_TAX, on=on, tax_code="saas") == D("4")


def test_lookups_outside_the_data_raise():
    with pytest.raises(TaxError) as caught:
        TABLE.rate("DE", TaxName.VAT, on=date(2023, 12, 31))
    assert caught.value.code == "rate_not_found"
    with pytest.raises(TaxError) as caught:
        TABLE.rate("US-LA", TaxName.SALES_TAX, on=date(2030, 1, 1))
    assert caught.value.code == "rate_not_found"
    with pytest.raises(TaxError) as caught:
        TABLE.rate("DE", TaxName.GST, on=date(2025, 1, 1))
    assert caught.value.code == "rate_not_found"


HEADER = "coverage_from = 2024-01-01\n"


@pytest.mark.parametrize(
    "rates",
    [
        # overlapping periods
        '{ jurisdiction = "DE", tax = "VAT", rate = "19", valid_from = 2024-01-01 },'
        '{ jurisdiction = "DE", tax = "VAT", rate = "16", valid_from = 2024-07-01 }',
        # a float rate
        '{ jurisdiction = "DE", tax = "VAT", rate = 19.0, valid_from = 2024-01-01 }',
        # before coverage
        '{ jurisdiction = "DE", tax = "VAT", rate = "19", valid_from = 2023-01-01 }',
        # empty period
        '{ jurisdiction = "DE", tax = "VAT", rate = "19", valid_from = 2024-02-01, valid_to = 2024-02-01 }',
        # unknown tax name, unknown key, a date-time
        '{ jurisdiction = "DE", tax = "Mehrwertsteuer", rate = "19", valid_from = 2024-01-01 }',
        '{ jurisdiction = "DE", tax = "VAT", rate = "19", valid_from = 2024-01-01, region = "x" }',
        '{ jurisdiction = "DE", tax = "VAT", rate = "19", valid_from = 2024-01-01T00:00:00 }',
        # a percent out of range
        '{ jurisdiction = "DE", tax = "VAT", rate = "100", valid_from = 2024-01-01 }',
    ],
)
def test_malformed_tables_are_refused(rates):
    with pytest.raises(TaxError) as caught:
        RateTable.from_toml(HEADER + f"rates = [{rates}]\n")
    assert caught.value.code == "invalid_rate_table"


def test_a_provider_reads_whatever_table_it_is_given():
    # A future change is one more dated entry, not a code change.
    table = RateTable.from_toml(
        HEADER
        + "rates = ["
        + '{ jurisdiction = "DE", tax = "VAT", rate = "19", valid_from = 2024-01-01, valid_to = 2027-01-01 },'
        + '{ jurisdiction = "DE", tax = "VAT", rate = "21", valid_from = 2027-01-01 }]\n'
    )
    provider = RulesTaxProvider(table)
    settings = TaxSettings(origin_country="DE", registrations=frozenset({"DE"}))
    [result] = provider.tax_lines(
        settings=settings,
        customer=TaxCustomer("DE"),
        lines=[TaxLineInput("l", D("100.00"), "EUR")],
        at=datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert result.tax_amount == D("21.00")
