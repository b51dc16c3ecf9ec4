"""The credit for unused time gives back what was billed for the time and not already reversed
(voided invoices, credit notes, discounts), never the list price's share (issue 9, item 5).

A plan of 100.00 EUR a month in advance; Acme subscribed on April 1st 2027 (a 30-day month), its
first invoice finalized at once (no grace period). Tax is off unless a test turns it on."""

from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import Organization, PlanVersion
from billing.selectors.credit import credit_balance_get
from billing.services.coupon import coupon_create, coupon_redeem
from billing.services.organization import organization_close
from billing.services.subscription import subscription_cancel, subscription_change_plan, subscription_create
from core.errors import DomainError
from invoicing.models import CreditNoteLine, Invoice, InvoiceLine, InvoicingSettings
from invoicing.services.billing_run import billing_run
from invoicing.services.invoice import (
    CreditNoteLineInput,
    credit_note_create,
    invoice_mark_paid,
    invoice_void,
)
from tests.factories import OrganizationFactory, PlanFactory, SubscriptionFactory
from tests.invoicing.conftest import utc

D = Decimal
APRIL = utc(2027, 4, 1)


def version(code: str) -> PlanVersion:
    return PlanVersion.objects.select_related("plan").get(plan__code=code)


@pytest.fixture
def plans(in_a):
    InvoicingSettings.objects.update_or_create(pk=1, defaults={"seller_name": "Seller GmbH", "grace_hours": 0})
    for code, fee in (("flat", "100.00"), ("pro", "200.00"), ("lite", "50.00")):
        PlanFactory(code=code, currency="EUR", base_fee=fee)


def april_billed():
    """Acme on Flat since April 1st, April's fee invoiced and open."""
    org = OrganizationFactory(external_id="acme", currency="EUR", country="DE", name="Acme GmbH")
    sub = SubscriptionFactory(organization=org, plan="flat", at=APRIL)
    billing_run(at=APRIL)
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.subtotal) == ("open", D("100.00"))
    return org, sub, invoice


@pytest.fixture
def billed(plans):
    return april_billed()


def fee_line(invoice: Invoice) -> InvoiceLine:
    return invoice.lines.get(kind="base_fee")


def lines(bill):
    return [(line.kind, line.description, line.amount.amount) for line in bill.lines]


def cancel_now(sub, at):
    sub.refresh_from_db()
    with time_machine.travel(at, tick=False):
        preview = subscription_cancel(actor=None, subscription=sub, at_period_end=False, preview=True)
        change = subscription_cancel(actor=None, subscription=sub, at_period_end=False)
    assert change.bill == preview.bill
    billing_run(at=at)
    return change


@pytest.mark.django_db
def test_a_voided_fee_is_not_credited_when_canceling_at_once(billed):
    org, sub, invoice = billed
    invoice_void(actor=None, invoice=invoice, at=utc(2027, 4, 1, 1))
    change = cancel_now(sub, utc(2027, 4, 1, 2))
    # before: "Unused time on Flat" -99.72 (100.00 x (30 d - 2 h) / 30 d), paid out as credit
    assert lines(change.bill) == []
    assert list(Invoice.objects.values_list("status", "total")) == [("void", D("100.00"))]
    assert credit_balance_get(organization=org, at=utc(2027, 4, 2)).amount == 0


@pytest.mark.django_db
def test_credit_notes_for_the_whole_fee_leave_nothing_to_credit(billed):
    org, sub, invoice = billed
    invoice_mark_paid(actor=None, invoice=invoice, at=utc(2027, 4, 1, 1))
    line = fee_line(invoice)
    for amount in ("60.00", "40.00"):
        credit_note_create(
            actor=None,
            invoice=invoice,
            reason="goodwill",
            lines=[CreditNoteLineInput(line.pk, D(amount))],
            at=utc(2027, 4, 1, 1),
        )
    assert credit_balance_get(organization=org, at=utc(2027, 4, 2)).amount == D("100.00")
    # 12 of April's 30 days left: the list price's share would be 40.00 (a balance of 140.00)
    change = cancel_now(sub, utc(2027, 4, 19))
    assert lines(change.bill) == []
    assert credit_balance_get(organization=org, at=utc(2027, 4, 20)).amount == D("100.00")


@pytest.mark.django_db
def test_a_partial_credit_note_is_credited_pro_rata_with_its_tax(plans):
    """With VAT: the credit note took back 60.00 + 11.40; half of April is left, so half of
    what is left of the fee (40.00) is credited: -20.00 and its tax -3.80."""
    InvoicingSettings.objects.filter(pk=1).update(seller_country="DE", tax_registrations=["DE"])
    org, sub, invoice = april_billed()
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (D("100.00"), D("19.00"), D("119.00"))
    invoice_mark_paid(actor=None, invoice=invoice, at=utc(2027, 4, 1, 1))
    note = credit_note_create(
        actor=None,
        invoice=invoice,
        reason="goodwill",
        lines=[CreditNoteLineInput(fee_line(invoice).pk, D("60.00"))],
        at=utc(2027, 4, 1, 1),
    )
    assert (note.subtotal, note.tax_total) == (D("60.00"), D("11.40"))
    change = cancel_now(sub, utc(2027, 4, 16))
    assert lines(change.bill) == [("base_fee_credit", "Unused time on Flat after 2027-04-16", D("-20.00"))]
    final = Invoice.objects.get(bill_point=utc(2027, 4, 16))
    assert (final.status, final.subtotal, final.tax_total, final.total) == (
        "paid",
        D("-20.00"),
        D("-3.80"),
        D("-23.80"),
    )
    # 71.40 from the credit note, 23.80 from the cancellation (before: 59.50, 130.90 in all)
    assert credit_balance_get(organization=org, at=utc(2027, 4, 17)).amount == D("95.20")


@pytest.mark.django_db
def test_an_upgrade_credits_what_is_left_of_a_credit_noted_fee(billed):
    _, sub, invoice = billed
    credit_note_create(
        actor=None,
        invoice=invoice,
        reason="outage",
        lines=[CreditNoteLineInput(fee_line(invoice).pk, D("40.00"))],
        at=utc(2027, 4, 2),
    )
    with time_machine.travel(utc(2027, 4, 16), tick=False):
        change = subscription_change_plan(actor=None, subscription=sub, plan_version=version("pro"))
    # half of April left: half of the 60.00 still billed, and half of Pro's 200.00
    assert lines(change.bill) == [
        ("base_fee_credit", "Unused time on Flat after 2027-04-16", D("-30.00")),
        ("base_fee", "Remaining time on Pro after 2027-04-16", D("100.00")),
    ]
    assert (change.bill.lines[0].quantity, change.bill.lines[0].unit_amount) == (None, None)


@pytest.mark.django_db
def test_closing_the_organization_does_not_credit_a_voided_fee(billed):
    org, _, invoice = billed
    invoice_void(actor=None, invoice=invoice, at=utc(2027, 4, 3))
    with time_machine.travel(utc(2027, 4, 11), tick=False):
        organization_close(actor=None, organization=Organization.objects.get(pk=org.pk))
    billing_run(at=utc(2027, 4, 11))
    assert list(Invoice.objects.values_list("status", flat=True)) == ["void"]
    assert credit_balance_get(organization=org, at=utc(2027, 4, 12)).amount == 0


@pytest.mark.django_db
def test_a_fee_a_fixed_coupon_paid_for_is_not_credited(plans):
    """A fixed coupon took April's whole fee: nothing was paid for the unused time. (Before, the
    list price's share was credited, as a fixed coupon never reduces a credit.)"""
    org = OrganizationFactory(external_id="acme", currency="EUR", country="DE")
    coupon = coupon_create(
        actor=None,
        code="FREE",
        name="Free April",
        discount_type="fixed",
        amount_off="100",
        currency="EUR",
        duration="once",
    )
    with time_machine.travel(APRIL, tick=False):
        sub = subscription_create(actor=None, organization=org, plan_version=version("flat"))
        coupon_redeem(actor=None, coupon=coupon, organization=org)
    billing_run(at=APRIL)
    assert Invoice.objects.get().total == 0
    change = cancel_now(sub, utc(2027, 4, 11))
    assert lines(change.bill) == []


@pytest.mark.django_db
def test_a_credited_fee_cannot_be_voided_or_credit_noted_again(billed):
    """The mirror: once half of April's fee is credited on a finalized invoice, voiding the
    invoice that charged it would leave that credit with nothing billed behind it, and a credit
    note can take back only the half the customer used. Refusals write nothing."""
    org, sub, invoice = billed
    cancel_now(sub, utc(2027, 4, 16))
    final = Invoice.objects.get(bill_point=utc(2027, 4, 16))
    assert (final.status, final.total) == ("paid", D("-50.00"))
    with pytest.raises(DomainError) as err:
        invoice_void(actor=None, invoice=invoice, at=utc(2027, 4, 17))
    assert (err.value.code, err.value.status_code) == ("invoice_fee_credited", 409)
    assert "credited as unused time on INV-000002" in err.value.message
    line = fee_line(invoice)
    with pytest.raises(DomainError) as err:
        credit_note_create(
            actor=None,
            invoice=invoice,
            reason="x",
            lines=[CreditNoteLineInput(line.pk, D("50.01"))],
            at=utc(2027, 4, 17),
        )
    assert err.value.code == "amount_exceeds_line"
    assert "50.00 left" in err.value.message
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due, CreditNoteLine.objects.count()) == ("open", D("100.00"), 0)
    credit_note_create(
        actor=None, invoice=invoice, reason="x", lines=[CreditNoteLineInput(line.pk, D("50.00"))], at=utc(2027, 4, 17)
    )
    invoice.refresh_from_db()
    assert invoice.amount_due == D("50.00")
    assert credit_balance_get(organization=org, at=utc(2027, 4, 18)).amount == D("50.00")


# --- the property ---------------------------------------------------------------------------

OPS = ("run", "pay", "void", "note", "upgrade", "downgrade", "cancel")


def fee_accounts() -> dict:
    """Per (subscription, version, billing period): (charged, credited, charged tax, credited
    tax, credit lines) over finalized, non-void invoices; charges net of credit notes."""
    notes = defaultdict(lambda: (D(0), D(0)))
    for row in CreditNoteLine.objects.values("invoice_line_id", "amount", "tax_amount"):
        amount, tax = notes[row["invoice_line_id"]]
        notes[row["invoice_line_id"]] = (amount + row["amount"], tax + row["tax_amount"])
    accounts = defaultdict(lambda: [D(0), D(0), D(0), D(0), 0])
    final = InvoiceLine.objects.filter(kind__in=("base_fee", "base_fee_credit")).exclude(
        invoice__status__in=("void", "draft")
    )
    for line in final.select_related("invoice"):
        key = (line.invoice.subscription_id, line.plan_version_id, line.billing_period_start)
        if line.kind == "base_fee":
            noted, noted_tax = notes[line.pk]
            accounts[key][0] += line.net_amount - noted
            accounts[key][2] += line.tax_amount - noted_tax
        else:
            accounts[key][1] -= line.net_amount
            accounts[key][3] -= line.tax_amount
            accounts[key][4] += 1
    return accounts


def check_invariant() -> None:
    for key, (charged, credited, charged_tax, credited_tax, count) in fee_accounts().items():
        assert credited <= charged, key
        # Tax is computed per line and rounded per line (the credit's at its own line), so the
        # tax given back may differ from what is left of the charge's by a cent per credit line.
        assert credited_tax <= charged_tax + D("0.01") * count, key


def step(op: str, n: int, sub, now) -> None:
    final = Invoice.objects.exclude(status__in=("draft", "void")).order_by("id")
    try:
        if op == "run":
            billing_run(at=now)
        elif op == "pay":
            open_ = list(final.filter(status="open"))
            if open_:
                invoice_mark_paid(actor=None, invoice=open_[n % len(open_)], at=now)
        elif op == "void":
            open_ = list(final.filter(status__in=("open", "uncollectible")))
            if open_:
                invoice_void(actor=None, invoice=open_[n % len(open_)], at=now)
        elif op == "note":
            fees = list(InvoiceLine.objects.filter(invoice__in=final, kind="base_fee", net_amount__gt=0).order_by("id"))
            if fees:
                line = fees[n % len(fees)]
                amount = (line.net_amount * (n % 100 + 1) / 100).quantize(D("0.01"), ROUND_HALF_UP)
                credit_note_create(
                    actor=None,
                    invoice=line.invoice,
                    reason="property",
                    lines=[CreditNoteLineInput(line.pk, max(amount, D("0.01")))],
                    at=now,
                )
        elif op in ("upgrade", "downgrade"):
            target = {"upgrade": "pro", "downgrade": "lite"}[op]
            sub.refresh_from_db()
            subscription_change_plan(actor=None, subscription=sub, plan_version=version(target), timing="now", at=now)
        elif op == "cancel":
            sub.refresh_from_db()
            subscription_cancel(actor=None, subscription=sub, at_period_end=False, at=now)
    except DomainError:
        pass  # refused (a wrong state, an amount over what is left): nothing was written


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(OPS), st.integers(min_value=0, max_value=10_000)), min_size=1, max_size=12
    ),
    vat=st.booleans(),
)
def test_property_credits_never_exceed_what_was_billed_net_of_voids_and_credit_notes(plans, steps, vat):
    """Over random sequences of bill / pay / void / credit note / change / cancel, spread over a
    few weeks: for every period and version, the credit for unused time granted on finalized
    invoices never exceeds what non-void invoices billed for that fee less credit notes."""
    savepoint = transaction.savepoint()
    try:
        InvoicingSettings.objects.filter(pk=1).update(
            seller_country="DE" if vat else "", tax_registrations=["DE"] if vat else []
        )
        org = OrganizationFactory(external_id="acme", currency="EUR", country="DE")
        now = APRIL
        with time_machine.travel(now, tick=False) as clock:
            sub = subscription_create(actor=None, organization=org, plan_version=version("flat"))
            billing_run(at=now)
            for op, n in steps:
                now += timedelta(seconds=(n * 211) % (9 * 86400) + 1)
                clock.move_to(now)
                step(op, n, sub, now)
                check_invariant()
            now += timedelta(days=70)
            clock.move_to(now)
            billing_run(at=now)  # every bill point due, finalized
            check_invariant()
    finally:
        transaction.savepoint_rollback(savepoint)
