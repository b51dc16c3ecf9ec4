"""A one-off charge: an invoice of one line outside any subscription (a setup fee, a consulting
day), issued at once. It is finalized like the billing run's invoices (numbered gap-free, seller
and customer snapshotted, tax per line through invoicing.compose, credit applied after tax) and
leaves through the same finalized effects, so its PDF, email, webhooks and collection (the
organization's collection method, payments' finalized hook) are those of every invoice.

The draft is composed by `one_off_draft`, pure of writes: the staff preview shows it and the
service stores it, so what was shown is what is issued."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.audit import Actor, audit_actor, audit_event
from billing.bill import Bill, BillLine, LineKind
from billing.locks import organization_lock
from billing.models import Organization
from core.errors import DomainError
from core.money import Money, round_money
from invoicing.compose import InvoiceDraft, invoice_compose
from invoicing.models import Invoice, InvoiceStatus
from invoicing.remittance import payment_reference
from invoicing.selectors.settings import invoicing_settings_get, tax_context_for, tax_settings_from
from invoicing.services.finalize import _credit, _finalized_effects, customer_snapshot, seller_snapshot
from invoicing.services.invoice_lines import draft_totals, invoice_lines_write
from invoicing.services.numbering import numbers_take

# No subscription: the draft's subscription id is a placeholder the invoice does not store.
NO_SUBSCRIPTION = 0


def one_off_draft(*, organization: Organization, description: str, amount: Money, at: datetime) -> InvoiceDraft:
    """The invoice a one-off charge of `amount` (net, or gross with tax-inclusive prices, as every
    price) makes at `at`, with its tax. DomainError codes: `organization_closed`,
    `description_required`, `currency_mismatch`, `invalid_amount` (not positive or not in the
    currency's decimals), `tax_problem` (the customer cannot be taxed: nothing is issued)."""
    if organization.status == "closed":
        raise DomainError("The organization is closed: it cannot be charged.", code="organization_closed")
    if not description.strip():
        raise DomainError("A one-off charge needs a description.", code="description_required")
    if amount.currency != organization.currency:
        raise DomainError(
            f"The organization is billed in {organization.currency}, not {amount.currency}.", code="currency_mismatch"
        )
    if amount.amount <= 0 or round_money(amount.amount, amount.currency) != amount.amount:
        raise DomainError(f"amount must be positive, in {amount.currency}'s decimals.", code="invalid_amount")
    line = BillLine(
        kind=LineKind.ONE_OFF,
        description=description.strip()[:300],
        amount=amount,
        # a point in time: the service window is the instant it is charged
        period_start=at,
        period_end=at,
        billing_period_start=at,
        billing_period_end=at,
        quantity=1,
        unit_amount=amount.amount,
        charged_at=at,
    )
    bill = Bill(
        subscription_id=NO_SUBSCRIPTION,
        point=at,
        currency=amount.currency,
        lines=(line,),
        timezone=organization.timezone,
    )
    settings = invoicing_settings_get()
    draft = invoice_compose(bill, tax=tax_context_for(organization, tax_settings=tax_settings_from(settings)))
    if draft.tax_problem:
        raise DomainError(
            f"The customer cannot be taxed, so nothing is issued: {draft.tax_problem}",
            code="tax_problem",
            status_code=409,
        )
    return draft


@transaction.atomic(durable=True)
def invoice_one_off_create(
    *, actor: Actor, organization: Organization, description: str, amount: Money, at: datetime | None = None
) -> Invoice:
    """Issue a one-off charge (see the module docstring): the invoice, finalized (paid at once
    when the credit balance covers it), audited `invoice.one_off_created` and `invoice.finalized`
    with the actor. Refusals are `one_off_draft`'s, with nothing written."""
    at = at or timezone.now()
    with audit_actor(actor):
        # The organization's lock orders this with its credit's other users and with a close.
        organization = organization_lock(organization.pk)
        draft = one_off_draft(organization=organization, description=description, amount=amount, at=at)
        settings = invoicing_settings_get()
        invoice = Invoice.objects.create(
            organization=organization, subscription=None, bill_point=at, currency=draft.currency, grace_until=at
        )
        invoice_lines_write([(invoice, draft)])
        draft_totals(invoice, draft)
        [number] = numbers_take(settings.number_prefix, 1)
        invoice.number = number
        invoice.payment_reference = payment_reference(number)
        invoice.status = InvoiceStatus.OPEN
        invoice.issued_at = at
        invoice.due_at = at + timedelta(days=settings.payment_terms_days)
        invoice.seller = seller_snapshot(settings)
        invoice.customer = customer_snapshot(organization)
        _credit([invoice], at=at)
        if invoice.amount_due == 0:
            invoice.status, invoice.paid_at = InvoiceStatus.PAID, at
        invoice.save()
        audit_event(
            invoice,
            event="invoice.one_off_created",
            description=draft.lines[0].line.description,
            amount=format(amount.amount, "f"),
            currency=amount.currency,
        )
        audit_event(
            invoice,
            event="invoice.finalized",
            number=invoice.number,
            total=format(invoice.total, "f"),
            amount_due=format(invoice.amount_due, "f"),
        )
        _finalized_effects([invoice])
    return invoice
