"""Row locks for invoicing. An invoice is locked before its organization (billing.locks), never
after it, so a credit note (invoice, then the organization's credit) and a billing-side service
(organization first) never wait on each other in opposite orders."""

from __future__ import annotations

from invoicing.models import Invoice


def invoice_lock(invoice_id: int) -> Invoice:
    """The invoice, locked (its organization loaded, not locked)."""
    return Invoice.objects.select_for_update(of=("self",)).select_related("organization").get(pk=invoice_id)
