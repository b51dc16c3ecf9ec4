from invoicing.models.invoice import (
    FINAL_STATUSES,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
)
from invoicing.models.revenue import (
    AccountingExport,
    AccountMap,
    RevenueEntry,
    RevenueMonthClose,
    RevenuePattern,
    RevenueSource,
)
from invoicing.models.settings import InvoicingSettings, NumberSequence

__all__ = [
    "FINAL_STATUSES",
    "AccountMap",
    "AccountingExport",
    "CreditNote",
    "CreditNoteLine",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "InvoicingSettings",
    "NumberSequence",
    "RevenueEntry",
    "RevenueMonthClose",
    "RevenuePattern",
    "RevenueSource",
]
