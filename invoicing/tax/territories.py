"""Countries and subdivisions the tax rules know, and how their codes are spelled."""

from __future__ import annotations

from functools import cache

from babel import Locale

# The 27 member states of the EU (ISO 3166-1 alpha-2).
EU_MEMBER_STATES = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
    }
)  # fmt: skip

# VAT numbers are prefixed with the ISO code, except Greece's, which use "EL".
EU_VAT_PREFIX = {country: ("EL" if country == "GR" else country) for country in EU_MEMBER_STATES}

# Territories outside these countries' ISO codes that belong to their VAT area: Monaco is part of
# the French VAT territory, the Isle of Man of the UK's. Other special territories (Canary
# Islands, Åland, Mount Athos, Northern Ireland for goods …) are not modelled: a customer there
# is taxed by the ISO country code given.
VAT_AREA_OF = {"MC": "FR", "IM": "GB"}

# 50 states and the District of Columbia. Territories (PR, GU, VI …) have their own regimes
# and are not covered.
US_STATES = frozenset(
    {
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL",
        "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE",
        "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD",
        "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
    }
)  # fmt: skip

# 10 provinces and 3 territories.
CA_PROVINCES = frozenset({"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"})

# Provinces where the harmonized sales tax replaces GST (one HST component at a combined rate).
CA_HST_PROVINCES = frozenset({"NB", "NL", "NS", "ON", "PE"})

# Provinces with their own sales tax levied next to GST, and its name.
CA_PROVINCIAL_TAX = {"BC": "PST", "SK": "PST", "MB": "RST", "QC": "QST"}

# Codes babel lists among territories that are not ISO 3166-1 countries (continents, unions,
# pseudo-locales, ISO-reserved territories such as Ceuta and Melilla or the Canary Islands).
_NOT_COUNTRIES = frozenset({"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"})


@cache
def iso_countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes (from CLDR via babel; Kosovo's user-assigned XK included)."""
    return frozenset(
        code
        for code in Locale("en").territories
        if isinstance(code, str) and len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    )


def vat_area(country: str) -> str:
    """The country whose VAT rules apply to `country` (Monaco -> FR, Isle of Man -> GB)."""
    return VAT_AREA_OF.get(country, country)
