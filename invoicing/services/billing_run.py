"""The billing run: turn every due bill point into a draft invoice, then finalize the drafts whose
grace period is over. Called hourly per tenant by Celery beat (invoicing.tasks.billing_run) and by
`manage.py billing_run` with the same arguments.

Crash safety and idempotency
- Subscriptions are taken in chunks, each chunk in one transaction that locks its subscriptions
  (rows another run holds are skipped, it bills them), writes their invoices and lines, and moves
  each subscription's watermark (`billed_through`, `next_bill_at`) past the point it billed. A
  crash anywhere rolls the chunk back whole; the next run starts from the stored watermarks, so
  it makes exactly the invoices an uninterrupted run would have.
- The database holds the invariant: one invoice per (subscription, bill point). A bill with no
  lines makes no invoice; its point is passed all the same.
- Usage is read in bulk: one statement per meter and kind of request for the whole chunk
  (billing.selectors.bill.usage_figures), never one per charge per invoice.

Late events: a draft waits `grace_hours` after its bill point and is recomputed when finalized,
so events arriving meanwhile count. Events for windows of finalized invoices are billed on the
next invoice as correction lines (billing.bill.correction_lines), never by editing the old one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_events_bulk
from billing.models import Subscription
from billing.services.subscription import (
    BILL_POINT_FIELDS,
    PROBLEM_FIELDS,
    subscription_bill_point_advance,
    subscriptions_billing_problem_clear,
)
from core.db import chunks, rows_update
from core.faults import fault_point
from invoicing.compose import InvoiceDraft
from invoicing.models import Invoice, InvoiceStatus, InvoicingSettings
from invoicing.selectors.drafts import compose_due
from invoicing.selectors.settings import invoicing_settings_get
from invoicing.services.billing_problems import DRAFTING, NOT_ISOLATED, billing_problem_record
from invoicing.services.finalize import invoices_finalize_due
from invoicing.services.invoice_lines import draft_totals, invoice_lines_write
from invoicing.webhooks import invoices_emit

logger = logging.getLogger(__name__)

CHUNK_SIZE = 500
Progress = Callable[[int, int], None]


@dataclass
class RunResult:
    at: datetime
    dry_run: bool
    subscriptions: int = 0
    bill_points: int = 0
    invoices_created: int = 0
    finalized: int = 0
    held: int = 0  # drafts that cannot be finalized (a tax problem) and stay drafts
    problems: int = 0  # subscriptions that failed (recorded as their billing problem), the run went on
    drafts: list[InvoiceDraft] = field(default_factory=list)  # what a dry run would create


def _locked(ids: Sequence[int], *, at: datetime) -> list[Subscription]:
    return list(
        Subscription.objects.select_for_update(of=("self",), skip_locked=True)
        .filter(pk__in=ids, next_bill_at__lte=at)
        .select_related("organization", "plan_version__plan")
        .order_by("id")
    )


def _bill_locked(subscriptions: list[Subscription], *, at: datetime, settings: InvoicingSettings) -> tuple[int, int]:
    """Draft every due bill point of these locked subscriptions, set-wise; (bill points, invoices)."""
    dues = compose_due(subscriptions, at=at, settings=settings)
    fault_point("billing.after_compose")
    grace = timedelta(hours=settings.grace_hours)
    invoices: list[tuple[Invoice, InvoiceDraft]] = []
    for due in dues:
        if due.draft.empty:
            continue
        invoice = Invoice(
            organization_id=due.subscription.organization_id,
            subscription=due.subscription,
            bill_point=due.point,
            status=InvoiceStatus.DRAFT,
            grace_until=due.point + grace,
        )
        draft_totals(invoice, due.draft)
        invoices.append((invoice, due.draft))
    Invoice.objects.bulk_create([invoice for invoice, _ in invoices])
    customers = {due.subscription.organization_id: due.subscription.organization.external_id for due in dues}
    invoices_emit("invoice.created", [invoice for invoice, _ in invoices], customers=customers)
    audit_events_bulk(
        [invoice for invoice, _ in invoices],
        event="invoice.drafted",
        details=lambda i: {"bill_point": i.bill_point.isoformat(), "total": i.total},
    )
    fault_point("billing.after_invoices")
    invoice_lines_write(invoices)
    fault_point("billing.after_lines")
    for due in dues:  # in order: a subscription's points one after another
        subscription_bill_point_advance(subscription=due.subscription, point=due.point, state=due.state)
    cleared = subscriptions_billing_problem_clear(subscriptions=subscriptions, stage=DRAFTING)
    rows_update(Subscription, subscriptions, BILL_POINT_FIELDS + (PROBLEM_FIELDS if cleared else []))
    fault_point("billing.before_commit")
    return len(dues), len(invoices)


def _bill_chunk(
    ids: Sequence[int], *, at: datetime, settings: InvoicingSettings, result: RunResult, one_by_one: bool = False
) -> None:
    """Bill a chunk in one transaction, set-wise. If anything in it fails, the chunk is rolled back
    whole and billed again one subscription at a time, each in a savepoint: a subscription that
    fails again keeps its watermark, records its billing problem and the others are billed.
    `one_by_one` skips the set-wise attempt (subscriptions known to have a problem)."""
    if not one_by_one:
        try:
            with transaction.atomic():
                subscriptions = _locked(ids, at=at)
                bill_points, created = _bill_locked(subscriptions, at=at, settings=settings)
        except NOT_ISOLATED:
            raise
        except Exception:
            logger.warning("billing chunk failed; billing its subscriptions one by one", exc_info=True)
        else:
            result.subscriptions += len(subscriptions)
            result.bill_points += bill_points
            result.invoices_created += created
            return
    now = timezone.now()
    counts = [0, 0, 0, 0]  # subscriptions, bill points, invoices, problems
    with transaction.atomic():
        subscriptions = _locked(ids, at=at)
        for subscription in subscriptions:
            try:
                with transaction.atomic():
                    bill_points, created = _bill_locked([subscription], at=at, settings=settings)
            except NOT_ISOLATED:
                raise
            except Exception as error:  # noqa: BLE001 - isolated to this subscription, recorded and logged
                billing_problem_record(subscription, stage=DRAFTING, error=error, at=now)
                counts[3] += 1
            else:
                counts[0] += 1
                counts[1] += bill_points
                counts[2] += created
    result.subscriptions += counts[0]
    result.bill_points += counts[1]
    result.invoices_created += counts[2]
    result.problems += counts[3]


def _dry_run_chunk(ids: Sequence[int], *, at: datetime, settings: InvoicingSettings, result: RunResult) -> None:
    subscriptions = list(Subscription.objects.filter(pk__in=ids).select_related("organization", "plan_version__plan"))
    try:
        dues = compose_due(subscriptions, at=at, settings=settings)
    except NOT_ISOLATED:
        raise
    except Exception:  # noqa: BLE001 - a dry run shows what it can; the real run records the problem
        dues = []
        for subscription in subscriptions:
            try:
                dues += compose_due([subscription], at=at, settings=settings)
            except NOT_ISOLATED:
                raise
            except Exception:  # noqa: BLE001
                result.problems += 1
    for due in dues:
        result.bill_points += 1
        if not due.draft.empty:
            result.drafts.append(due.draft)
    result.subscriptions += len(subscriptions)


def billing_run(
    *, at: datetime | None = None, dry_run: bool = False, progress: Progress | None = None, chunk_size: int = CHUNK_SIZE
) -> RunResult:
    """Bill every bill point due by `at` (now by default) in the current tenant, then finalize the
    drafts whose grace period ended by `at`. With `dry_run`, compute the drafts it would make and
    write nothing."""
    at = at or timezone.now()
    settings = invoicing_settings_get()
    result = RunResult(at=at, dry_run=dry_run)
    rows = list(Subscription.objects.filter(next_bill_at__lte=at).order_by("id").values_list("id", "billing_problem"))
    # Subscriptions that failed before are billed one by one, so they do not make a chunk of
    # healthy ones fail (and be billed one by one) every hour until they are fixed.
    troubled = [pk for pk, problem in rows if problem]
    healthy = [pk for pk, problem in rows if not problem]
    done, total = 0, len(troubled) + len(healthy)
    for chunk, one_by_one in [
        *((c, True) for c in chunks(troubled, chunk_size)),
        *((c, False) for c in chunks(healthy, chunk_size)),
    ]:
        if dry_run:
            _dry_run_chunk(chunk, at=at, settings=settings, result=result)
        else:
            _bill_chunk(chunk, at=at, settings=settings, result=result, one_by_one=one_by_one)
            fault_point("billing.after_chunk")
        done += len(chunk)
        if progress:
            progress(done, total)
    if not dry_run:
        finalized = invoices_finalize_due(at=at, settings=settings, chunk_size=chunk_size)
        result.finalized, result.held = finalized.finalized, finalized.held
        result.problems += finalized.problems
    logger.info(
        "billing run",
        extra={
            "at": at.isoformat(),
            "dry_run": dry_run,
            "subscriptions": result.subscriptions,
            "bill_points": result.bill_points,
            "invoices_created": result.invoices_created,
            "finalized": result.finalized,
            "held": result.held,
            "problems": result.problems,
        },
    )
    return result
