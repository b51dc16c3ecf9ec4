"""Staff actions on an organization's dunning (the staff dunning view, adminpanel): pause and
resume, retry now, write an invoice off, suspend and reactivate by hand. Each is audited with the
acting user."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.audit import Actor, audit_actor, audit_event
from billing.models import Organization
from core.errors import DomainError
from dunning.models import CaseResolution, DunningAccount, DunningCase
from dunning.services.run import RunResult, _organization_settle, case_close, organization_run
from invoicing.models import Invoice, InvoiceStatus
from invoicing.services.invoice import invoice_mark_uncollectible
from payments.models import Payment
from payments.services.collection import invoice_pay


def dunning_pause(*, actor: Actor, organization: Organization, paused: bool = True) -> DunningAccount:
    """While paused the run takes no step for the organization (no retry, email or stage); its
    state stays as it is. Resuming lets the next run catch up to the day each case is on."""
    with audit_actor(actor), transaction.atomic():
        account, _ = DunningAccount.objects.select_for_update().get_or_create(organization=organization)
        if account.paused == paused:
            return account
        account.paused = paused
        account.save(update_fields=["paused", "updated_at"])
        audit_event(organization, event="dunning.paused" if paused else "dunning.resumed")
    return account


def dunning_retry_now(*, actor: Actor, invoice: Invoice) -> Payment:
    """Charge the default method now (the pay-now path: a payment in flight is taken instead of a
    new one). Refused, nothing written, for an invoice not in open dunning."""
    if not DunningCase.objects.filter(invoice=invoice, closed_at=None).exists():
        raise DomainError(f"{invoice} is not in dunning.", code="not_in_dunning", status_code=409)
    with audit_actor(actor):
        audit_event(invoice, event="dunning.retry_now")
    return invoice_pay(actor=actor, invoice=invoice)


def dunning_write_off(*, actor: Actor, invoice: Invoice, at: datetime | None = None) -> DunningCase:
    """Forgive the invoice: mark it uncollectible (if it is still open) and close its case as
    written off; the organization is active again once no other overdue invoice is left."""
    at = at or timezone.now()
    with audit_actor(actor), transaction.atomic():
        case = DunningCase.objects.select_for_update().filter(invoice=invoice, closed_at=None).first()
        if case is None:
            raise DomainError(f"{invoice} is not in dunning.", code="not_in_dunning", status_code=409)
        if Invoice.objects.filter(pk=invoice.pk, status=InvoiceStatus.OPEN).exists():
            invoice_mark_uncollectible(actor=actor, invoice=invoice, at=at)
        case.invoice = Invoice.objects.get(pk=invoice.pk)
        case_close(case, resolution=CaseResolution.WRITTEN_OFF, at=at)
        audit_event(invoice, event="dunning.written_off")
    with audit_actor(actor):
        organization_run(organization_id=case.organization_id, at=at)
    return case


def organization_suspend(
    *, actor: Actor, organization: Organization, suspended: bool = True, at: datetime | None = None
) -> DunningAccount:
    """Suspend the organization by hand (usage and plan changes blocked, its live subscriptions
    suspended with `subscription.suspended`), or lift that suspension: the organization then
    takes the state its open cases give it (active when none, `subscription.reactivated`).
    The same transition as dunning's stages, so the run and the entitlement agree with it; the
    run keeps it suspended until staff reactivate. A closed organization is refused."""
    at = at or timezone.now()
    if organization.status == "closed":
        raise DomainError("The organization is closed.", code="organization_closed", status_code=409)
    with audit_actor(actor), transaction.atomic():
        account, _ = DunningAccount.objects.select_for_update().get_or_create(organization=organization)
        if account.suspended_by_staff == suspended:
            raise DomainError(
                "The organization is suspended by staff already." if suspended else "No suspension by staff to lift.",
                code="suspension_unchanged",
                status_code=409,
            )
        account.suspended_by_staff = suspended
        account.save(update_fields=["suspended_by_staff", "updated_at"])
        audit_event(organization, event="organization.suspended" if suspended else "organization.reactivated")
        _organization_settle(organization_id=organization.pk, at=at, result=RunResult(), actor=actor)
    return DunningAccount.objects.get(pk=account.pk)
