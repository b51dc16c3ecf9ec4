"""The billing run on real PostgreSQL with time frozen: drafts at bill points, the grace period for
late events, gap-free numbers at finalization, corrections for events that arrive after it, the
upcoming-invoice preview equal to the invoice, and re-runs that create nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from billing.models import PlanVersion, Subscription
from core.money import Money
from invoicing.models import Invoice, InvoiceLine
from invoicing.selectors.preview import invoice_preview_get
from invoicing.services.billing_run import billing_run
from tests.invoicing.conftest import calls, utc

D = Decimal


def spread(start, count, step=timedelta(minutes=1)):
    return [start + i * step for i in range(count)]


def lines_of(invoice):
    return [
        (line.kind, line.description, line.amount, line.tax_amount, line.tax_rate)
        for line in invoice.lines.order_by("position")
    ]


def draft_lines(draft):
    return [
        (d.line.kind, d.line.description, d.line.amount.amount, d.tax_amount.amount, d.tax_rate) for d in draft.lines
    ]


@pytest.mark.django_db
def test_a_month_of_billing_with_grace_late_events_and_corrections(world):
    org, _ = world
    first = billing_run(at=utc(2027, 4, 1))
    assert (first.invoices_created, first.finalized) == (1, 0)  # a draft for 24 hours
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.number, invoice.grace_until) == ("draft", None, utc(2027, 4, 2))
    assert lines_of(invoice) == [("base_fee", "Basic base fee", D("30.00"), D("5.70"), D("19"))]
    assert billing_run(at=utc(2027, 4, 1, 12)).invoices_created == 0  # nothing new, nothing due

    finalized = billing_run(at=utc(2027, 4, 2))
    assert finalized.finalized == 1
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number) == ("open", "INV-000001")
    assert (invoice.subtotal, invoice.tax_total, invoice.total, invoice.amount_due) == (
        D("30.00"),
        D("5.70"),
        D("35.70"),
        D("35.70"),
    )
    assert invoice.issued_at == utc(2027, 4, 2) and invoice.due_at == utc(2027, 4, 16)
    assert invoice.seller["name"] == "Seller GmbH" and invoice.customer["name"] == "Acme GmbH"
    assert (invoice.lines.get().tax_reason, invoice.lines.get().tax_jurisdiction) == (
        "VAT at the standard rate of DE",
        "DE",
    )

    calls("acme", *spread(utc(2027, 4, 3), 500))
    with time_machine.travel(utc(2027, 4, 20), tick=False):
        [preview] = invoice_preview_get(organization=org)
    may = billing_run(at=utc(2027, 5, 1))
    assert may.invoices_created == 1
    draft = Invoice.objects.get(bill_point=utc(2027, 5, 1))
    expected = [
        ("usage", "API calls", D("5.00"), D("0.95"), D("19")),
        ("base_fee", "Basic base fee", D("30.00"), D("5.70"), D("19")),
    ]
    assert lines_of(draft) == expected == draft_lines(preview)
    assert (preview.total, draft.total_money) == (Money(D("41.65"), "EUR"), Money(D("41.65"), "EUR"))

    # a late event inside the grace period counts on the finalized invoice itself
    calls("acme", utc(2027, 4, 30, 23, 59), prefix="late1")
    billing_run(at=utc(2027, 5, 2))
    draft.refresh_from_db()
    assert draft.status == "open" and draft.number == "INV-000002"
    assert lines_of(draft)[0] == ("usage", "API calls", D("5.01"), D("0.95"), D("19"))

    # one after finalization is billed on the next invoice, as a correction
    calls("acme", utc(2027, 4, 29), utc(2027, 4, 29, 1), prefix="late2")
    billing_run(at=utc(2027, 6, 1))
    june = Invoice.objects.get(bill_point=utc(2027, 6, 1))
    assert lines_of(june) == [
        ("usage", "API calls", D("0.00"), D("0.00"), D("19")),
        ("correction", "API calls: late usage, 2027-04-01 to 2027-05-01", D("0.02"), D("0.00"), D("19")),
        ("base_fee", "Basic base fee", D("30.00"), D("5.70"), D("19")),
    ]
    correction = june.lines.get(kind="correction")
    assert correction.quantity == 2 and correction.corrects == draft.lines.get(kind="usage")
    assert (correction.period_start, correction.period_end) == (utc(2027, 4, 1), utc(2027, 5, 1))
    # the old invoice did not change
    assert lines_of(draft)[0] == ("usage", "API calls", D("5.01"), D("0.95"), D("19"))
    # finalized, the correction is not billed again
    billing_run(at=utc(2027, 6, 2))
    billing_run(at=utc(2027, 7, 1))
    july = Invoice.objects.get(bill_point=utc(2027, 7, 1))
    assert [line.kind for line in july.lines.order_by("position")] == ["usage", "base_fee"]
    assert list(Invoice.objects.exclude(number=None).order_by("number").values_list("number", flat=True)) == [
        "INV-000001",
        "INV-000002",
        "INV-000003",
    ]


@pytest.mark.django_db
def test_rerunning_and_dry_runs_create_nothing(world):
    dry = billing_run(at=utc(2027, 6, 15), dry_run=True)
    assert [d.point for d in dry.drafts] == [utc(2027, 4, 1), utc(2027, 5, 1), utc(2027, 6, 1)]
    assert Invoice.objects.count() == 0 and Subscription.objects.get().billed_through is None
    real = billing_run(at=utc(2027, 6, 15))
    assert real.invoices_created == 3 and real.finalized == 3
    stored = {i.bill_point: i.total for i in Invoice.objects.all()}
    assert stored == {d.point: d.total.amount for d in dry.drafts}
    again = billing_run(at=utc(2027, 6, 15))
    assert (again.invoices_created, again.finalized, again.bill_points) == (0, 0, 0)
    assert Invoice.objects.count() == 3
    assert InvoiceLine.objects.count() == 5  # Apr: fee; May, Jun: usage + fee


@pytest.mark.django_db
def test_a_customer_tax_cannot_place_stays_a_draft_until_fixed(world):
    org, _ = world
    type(org).objects.filter(pk=org.pk).update(country="")
    billing_run(at=utc(2027, 4, 1))
    result = billing_run(at=utc(2027, 4, 3))
    invoice = Invoice.objects.get()
    assert (result.finalized, result.held) == (0, 1)
    assert invoice.status == "draft" and invoice.number is None
    assert invoice.tax_problem.startswith("customer_location_required: ")
    type(org).objects.filter(pk=org.pk).update(country="FR", tax_id="FR40303265045")
    result = billing_run(at=utc(2027, 4, 4))
    invoice.refresh_from_db()
    assert (result.finalized, result.held, invoice.status, invoice.number) == (1, 0, "open", "INV-000001")
    line = invoice.lines.get()
    # a French business with a valid VAT number: reverse charge, 0 %
    assert (line.tax_amount, line.tax_rate, invoice.total) == (D("0.00"), D("0"), D("30.00"))
    assert "Article 196" in line.tax_reason
    assert invoice.tax_problem == ""


@pytest.mark.django_db
def test_credit_is_applied_after_tax_and_a_negative_invoice_becomes_credit(world):
    from billing.selectors.credit import credit_balance_get
    from billing.services.credit import credit_grant
    from billing.services.subscription import subscription_change_plan

    org, sub = world
    with time_machine.travel(utc(2027, 4, 1), tick=False):
        credit_grant(actor=None, organization=org, amount=D("10.00"), currency="EUR", expires_at=utc(2027, 12, 1))
    billing_run(at=utc(2027, 4, 2))
    april = Invoice.objects.get()
    # 30.00 + 19 % = 35.70, minus the 10.00 of credit
    assert (april.total, april.credits_applied, april.amount_due, april.status) == (
        D("35.70"),
        D("10.00"),
        D("25.70"),
        "open",
    )
    cheap = PlanVersion.objects.get().plan.versions.create(version=2, base_fee=D("0"))
    with time_machine.travel(utc(2027, 4, 16), tick=False):
        subscription_change_plan(actor=None, subscription=sub, plan_version=cheap, timing="now")
    billing_run(at=utc(2027, 4, 17))
    change = Invoice.objects.get(bill_point=utc(2027, 4, 16))
    # 15 of April's 30 days unused: -15.00, -2.85 of VAT; nothing charged on the free version
    assert [(x.kind, x.amount, x.tax_amount) for x in change.lines.order_by("position")] == [
        ("usage", D("0.00"), D("0.00")),
        ("base_fee_credit", D("-15.00"), D("-2.85")),
    ]
    assert (change.total, change.amount_due, change.status) == (D("-17.85"), D("0"), "paid")
    assert credit_balance_get(organization=org, at=utc(2027, 4, 17)).amount == D("17.85")
