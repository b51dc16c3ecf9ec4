"""The tenant's invoicing settings and what they mean for tax."""

from __future__ import annotations

from functools import cache

from billing.models import Organization
from invoicing.compose import TaxContext
from invoicing.models import InvoicingSettings
from invoicing.tax import RulesTaxProvider, TaxCustomer, TaxSettings


@cache
def tax_provider() -> RulesTaxProvider:
    """One provider per process: it parses the rate table once."""
    return RulesTaxProvider()


def invoicing_settings_get() -> InvoicingSettings:
    """The tenant's settings, or the defaults (unsaved) until staff save them: reading writes nothing."""
    return InvoicingSettings.objects.filter(pk=1).first() or InvoicingSettings(pk=1)


def tax_settings_from(settings: InvoicingSettings) -> TaxSettings | None:
    if not settings.seller_country:
        return None  # tax is off until the seller says where it is established
    return TaxSettings(
        origin_country=settings.seller_country,
        registrations=frozenset(settings.tax_registrations),
        prices_include_tax=settings.prices_include_tax,
        us_taxability={state: bool(v) for state, v in settings.us_taxability.items()},
    )


def tax_customer_from(organization: Organization) -> TaxCustomer:
    # Organizations are the seller's B2B customers; a missing or malformed tax id still makes the
    # rules tax them as consumers where that matters (EU cross-border).
    return TaxCustomer(
        country=organization.country or None,
        region=organization.region or None,
        tax_id=organization.tax_id or None,
        is_business=True,
        exempt=organization.tax_exempt,
        exemption_reference=organization.tax_exemption_reference,
    )


def tax_context_for(organization: Organization, *, tax_settings: TaxSettings | None) -> TaxContext:
    return TaxContext(provider=tax_provider(), settings=tax_settings, customer=tax_customer_from(organization))
