"""Finalizing drafts: re-made with the usage as it stands when their grace period ends (late
events count), numbered gap-free, the seller's and customer's details snapshotted, credit applied
after tax, then immutable. A draft whose customer the tax rules cannot place stays a draft with
its `tax_problem` (and so do the later drafts of its subscription: drafts finalize in order).

Numbers come from invoicing.services.numbering, in the transaction that finalizes: a rollback
gives them back, so there is never a gap."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from accounts.audit import Actor, audit_actor, audit_events_bulk
from billing.models import GRANT_KINDS, CreditEntry, CreditKind, Organization, Subscription
from billing.services.credit import credit_apply, credit_grant
from billing.services.subscription import PROBLEM_FIELDS, subscriptions_billing_problem_clear
from core.db import chunks, rows_update
from core.errors import DomainError
from core.faults import fault_point
from invoicing.compose import InvoiceDraft
from invoicing.hooks import finalized_hooks_run
from invoicing.models import Invoice, InvoiceLine, InvoiceStatus, InvoicingSettings
from invoicing.remittance import payment_reference
from invoicing.selectors.drafts import compose_due
from invoicing.selectors.settings import invoicing_settings_get
from invoicing.services.billing_problems import FINALIZING, NOT_ISOLATED, billing_problem_record
from invoicing.services.deliver import invoice_deliveries_add
from invoicing.services.invoice_lines import draft_totals, invoice_line_rows, invoice_lines_write
from invoicing.services.numbering import numbers_take
from invoicing.services.revenue import revenue_schedule_build
from invoicing.webhooks import invoices_emit

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
_COMPARED = (
    "kind",
    "description",
    "quantity",
    "unit_amount",
    "amount",
    "net_amount",
    "tax_amount",
    "tax_rate",
    "tax_jurisdiction",
    "tax_reason",
    "taxes",
    "period_start",
    "period_end",
    "billing_period_start",
    "billing_period_end",
    "plan_version_id",
    "charge_id",
    "meter_code",
    "group",
    "breakdown",
    "proration",
    "coupon_redemption_id",
    "corrects_id",
)


@dataclass
class FinalizeResult:
    finalized: int = 0
    held: int = 0
    problems: int = 0  # subscriptions whose drafts could not be finalized (their billing problem)

    def add(self, other: FinalizeResult) -> None:
        self.finalized += other.finalized
        self.held += other.held
        self.problems += other.problems


def seller_snapshot(settings: InvoicingSettings) -> dict:
    tenant = connection.tenant
    return {
        "name": settings.seller_name or getattr(tenant, "legal_name", "") or getattr(tenant, "name", ""),
        "address": settings.seller_address,
        "country": settings.seller_country,
        "region": settings.seller_region,
        "tax_id": settings.seller_tax_id,
        "email": getattr(tenant, "support_email", ""),
        "legal_text": getattr(tenant, "legal_text", ""),
        "primary_color": getattr(tenant, "brand_primary_color", "#1f4b99"),
        "accent_color": getattr(tenant, "brand_accent_color", "#f2a900"),
        "logo": tenant.brand_logo.name if getattr(tenant, "brand_logo", None) else "",
        "prices_include_tax": settings.prices_include_tax,
        "bank": bank_snapshot(settings),
    }


def bank_snapshot(settings: InvoicingSettings) -> dict:
    """Where to send a transfer, as printed on the invoice (empty: no transfer instructions)."""
    bank = {
        "account_holder": settings.bank_account_holder,
        "bank_name": settings.bank_name,
        "iban": settings.bank_iban,
        "bic": settings.bank_bic,
        "account_number": settings.bank_account_number,
        "routing_number": settings.bank_routing_number,
    }
    return bank if bank["iban"] or bank["account_number"] else {}


def customer_snapshot(organization: Organization) -> dict:
    fields = ("external_id", "name", "billing_email", "address_line1", "address_line2", "city", "region")
    fields += ("postal_code", "country", "tax_id", "tax_exempt", "tax_exemption_reference")
    return {name: getattr(organization, name) for name in fields}


def _same_lines(invoice: Invoice, draft: InvoiceDraft, stored: list[InvoiceLine]) -> bool:
    """Whether the stored lines (in position order) are the draft's."""
    fresh = invoice_line_rows(invoice, draft)
    if len(stored) != len(fresh):
        return False
    positions = {row.pk: row.position for row in stored}
    for old, new, d in zip(stored, fresh, draft.lines, strict=True):
        if any(getattr(old, f) != getattr(new, f) for f in _COMPARED):
            return False
        if (positions.get(old.discounts_id) if old.discounts_id else None) != d.line.discounts_line:
            return False
    return True


def _totals(invoice: Invoice) -> tuple:
    return (invoice.tax_problem, invoice.subtotal, invoice.tax_total, invoice.total, invoice.amount_due)


def _credit(invoices: Sequence[Invoice], *, at: datetime) -> None:
    """Apply credit after tax (soonest-expiring first); a negative total becomes credit."""
    with_credit = set(
        CreditEntry.objects.filter(
            organization_id__in={i.organization_id for i in invoices}, kind__in=GRANT_KINDS
        ).values_list("organization_id", flat=True)
    )
    for invoice in invoices:
        if invoice.total < 0:
            credit_grant(
                actor=None,
                organization=invoice.organization,
                amount=-invoice.total,
                currency=invoice.currency,
                kind=CreditKind.PRORATION,
                description=f"Credit from invoice {invoice.number}",
                reference=invoice.number or "",
                at=at,
            )
            invoice.amount_due = ZERO
        elif invoice.total > 0 and invoice.organization_id in with_credit:
            applied = credit_apply(
                organization=invoice.organization,
                amount=invoice.total,
                currency=invoice.currency,
                at=at,
                reference=invoice.number or "",
            )
            invoice.credits_applied = applied.applied
            invoice.amount_due = invoice.total - applied.applied
        else:
            invoice.amount_due = invoice.total


def _finalized_effects(invoices: list[Invoice]) -> None:
    """In the finalizing transaction: the PDF and email of each (outbox, dispatched on commit in
    batches of 50 per task) and the webhook events, one INSERT each for the chunk."""
    invoice_deliveries_add([invoice.pk for invoice in invoices])
    customers = {invoice.organization_id: invoice.organization.external_id for invoice in invoices}
    invoices_emit("invoice.finalized", invoices, customers=customers)
    invoices_emit("invoice.paid", [i for i in invoices if i.status == InvoiceStatus.PAID], customers=customers)
    revenue_schedule_build(invoices)
    finalized_hooks_run(invoices)


def _finalize_chunk(
    subscription_ids: Sequence[int], *, at: datetime, settings: InvoicingSettings, result: FinalizeResult
):
    with transaction.atomic():
        drafts = list(
            Invoice.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(subscription_id__in=subscription_ids, status=InvoiceStatus.DRAFT, grace_until__lte=at)
            .select_related("organization", "subscription__organization", "subscription__plan_version__plan")
            .order_by("subscription_id", "bill_point")
        )
        queue: dict[int, list[Invoice]] = defaultdict(list)
        for invoice in drafts:
            queue[invoice.subscription_id].append(invoice)
        seller = seller_snapshot(settings)
        delivered: list[Invoice] = []
        while queue:
            batch = [invoices.pop(0) for invoices in queue.values()]
            queue = {sid: rest for sid, rest in queue.items() if rest}
            dues = compose_due(
                [invoice.subscription for invoice in batch],
                at=max(invoice.bill_point for invoice in batch),
                settings=settings,
                points={invoice.subscription_id: invoice.bill_point for invoice in batch},
                exclude_invoice_ids=[invoice.pk for invoice in batch],
            )
            by_subscription = {due.subscription.pk: due for due in dues}
            # The batch's stored lines in one query, not one per invoice.
            stored: dict[int, list[InvoiceLine]] = defaultdict(list)
            for line in InvoiceLine.objects.filter(invoice__in=[i.pk for i in batch]).order_by(
                "invoice_id", "position"
            ):
                stored[line.invoice_id].append(line)
            ready: list[Invoice] = []
            for invoice in batch:
                draft = by_subscription[invoice.subscription_id].draft
                if not _same_lines(invoice, draft, stored[invoice.pk]):
                    invoice.lines.all().delete()
                    invoice_lines_write([(invoice, draft)])
                before = _totals(invoice)
                draft_totals(invoice, draft)
                if draft.tax_problem:
                    result.held += 1
                    queue.pop(invoice.subscription_id, None)  # its later drafts wait for this one
                    if _totals(invoice) != before:  # only a real change is written (and audited)
                        invoice.save(update_fields=["tax_problem", "subtotal", "tax_total", "total", "amount_due"])
                    continue
                ready.append(invoice)
            numbers = numbers_take(settings.number_prefix, len(ready))
            fault_point("finalize.after_numbers")
            now = timezone.now()
            for invoice, number in zip(ready, numbers, strict=True):
                invoice.updated_at = now  # rows_update writes fields as they are, auto_now included
                invoice.number = number
                invoice.payment_reference = payment_reference(number)
                invoice.status = InvoiceStatus.OPEN
                invoice.issued_at = at
                invoice.due_at = at + timedelta(days=settings.payment_terms_days)
                invoice.seller = seller
                invoice.customer = customer_snapshot(invoice.organization)
            _credit(ready, at=at)
            for invoice in ready:
                if invoice.amount_due == 0:
                    invoice.status, invoice.paid_at = InvoiceStatus.PAID, at
            rows_update(
                Invoice,
                ready,
                [
                    "number",
                    "payment_reference",
                    "status",
                    "issued_at",
                    "due_at",
                    "paid_at",
                    "seller",
                    "customer",
                    "currency",
                    "period_start",
                    "period_end",
                    "subtotal",
                    "tax_total",
                    "total",
                    "credits_applied",
                    "amount_due",
                    "tax_problem",
                    "updated_at",
                ],
            )
            audit_events_bulk(
                ready,
                event="invoice.finalized",
                details=lambda i: {"number": i.number, "total": i.total, "amount_due": i.amount_due},
            )
            result.finalized += len(ready)
            delivered += ready
            fault_point("finalize.after_round")
        # A problem this stage recorded on one of them before is over (their drafts went through
        # or wait for a tax fix, which is not a billing problem).
        troubled = list(
            Subscription.objects.filter(pk__in=subscription_ids, billing_problem__startswith=f"{FINALIZING}:")
        )
        if subscriptions_billing_problem_clear(subscriptions=troubled, stage=FINALIZING):
            rows_update(Subscription, troubled, PROBLEM_FIELDS)
        _finalized_effects(delivered)


def invoices_finalize_due(
    *, at: datetime | None = None, settings: InvoicingSettings | None = None, chunk_size: int = 500
) -> FinalizeResult:
    """Finalize every draft whose grace period ended by `at`, a subscription's drafts in order."""
    at = at or timezone.now()
    settings = settings or invoicing_settings_get()
    result = FinalizeResult()
    rows = list(
        Invoice.objects.filter(status=InvoiceStatus.DRAFT, grace_until__lte=at, subscription__isnull=False)
        .order_by("subscription_id")
        .values_list("subscription_id", "subscription__billing_problem")
        .distinct()
    )
    # As when drafting: subscriptions that failed before go one by one, the rest set-wise, and a
    # chunk that fails is finalized again one subscription at a time.
    for chunk in chunks([sid for sid, problem in rows if problem], chunk_size):
        _finalize_one_by_one(chunk, at=at, settings=settings, result=result)
    for chunk in chunks([sid for sid, problem in rows if not problem], chunk_size):
        attempt = FinalizeResult()
        try:
            _finalize_chunk(chunk, at=at, settings=settings, result=attempt)
        except NOT_ISOLATED:
            raise
        except Exception:
            logger.warning("finalizing a chunk failed; finalizing its subscriptions one by one", exc_info=True)
            _finalize_one_by_one(chunk, at=at, settings=settings, result=result)
        else:
            result.add(attempt)
    return result


def _finalize_one_by_one(
    subscription_ids: Sequence[int], *, at: datetime, settings: InvoicingSettings, result: FinalizeResult
) -> None:
    """Each subscription's drafts in their own transaction; one that fails keeps its drafts, records
    its billing problem, and the others go on."""
    for subscription_id in subscription_ids:
        attempt = FinalizeResult()
        try:
            _finalize_chunk([subscription_id], at=at, settings=settings, result=attempt)
        except NOT_ISOLATED:
            raise
        except Exception as error:  # noqa: BLE001 - isolated to this subscription, recorded and logged
            with transaction.atomic():
                subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
                billing_problem_record(subscription, stage=FINALIZING, error=error, at=timezone.now())
            result.problems += 1
        else:
            result.add(attempt)


class _Held(Exception):
    pass


def invoice_finalize(*, actor: Actor = None, invoice: Invoice, at: datetime | None = None) -> Invoice:
    """Finalize one draft now, before its grace period ends (staff or API); its subscription's
    earlier drafts are finalized first. Refused (DomainError `tax_problem`, nothing written) when
    it or an earlier draft of its subscription cannot be taxed."""
    at = at or timezone.now()
    settings = invoicing_settings_get()
    if invoice.status != InvoiceStatus.DRAFT:
        raise DomainError(f"Invoice {invoice} is already finalized.", code="invoice_not_draft", status_code=409)
    try:
        with audit_actor(actor), transaction.atomic():
            earlier = Invoice.objects.filter(
                subscription_id=invoice.subscription_id, status=InvoiceStatus.DRAFT, bill_point__lte=invoice.bill_point
            )
            earlier.update(grace_until=at)
            _finalize_chunk([invoice.subscription_id], at=at, settings=settings, result=FinalizeResult())
            invoice.refresh_from_db()
            if invoice.status == InvoiceStatus.DRAFT:
                blocking = earlier.exclude(tax_problem="").order_by("bill_point").first() or invoice
                raise _Held(blocking)  # rolls back the moved grace periods too
    except _Held as held:
        blocking = held.args[0]
        which = "it" if blocking.pk == invoice.pk else f"an earlier draft of its subscription ({blocking.pk})"
        raise DomainError(
            f"The invoice cannot be finalized: {which} has a tax problem: {blocking.tax_problem or 'unknown'}",
            code="tax_problem",
            status_code=409,
        ) from None
    return invoice
