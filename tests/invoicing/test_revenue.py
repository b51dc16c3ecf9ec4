"""Revenue recognition (issue 14, item 4): each finalized line's daily schedule, credit notes and
voids reversing, the month close, and the property that over a subscription's life recognized
revenue equals billed revenue net of credit notes and voids, exactly.

Plans of tests/invoicing/test_unused_time_credit.py: Flat 100.00 EUR a month in advance (Pro
200.00, Lite 50.00); Acme on Flat since April 1st 2027 (30 days), no grace period, no tax."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.services.subscription import subscription_create
from core.errors import DomainError
from invoicing.models import CreditNote, Invoice, InvoiceLine, RevenueEntry, RevenueMonthClose
from invoicing.services.billing_run import billing_run
from invoicing.services.invoice import CreditNoteLineInput, credit_note_create, invoice_mark_paid, invoice_void
from invoicing.services.revenue import day_shares, day_weights, revenue_month_close
from tests.factories import OrganizationFactory
from tests.helpers import utc
from tests.invoicing.test_unused_time_credit import (  # noqa: F401 (plans is a fixture)
    APRIL,
    OPS,
    april_billed,
    plans,
    step,
    version,
)

D = Decimal


def schedule(**filters) -> list[tuple[str, date, date, Decimal]]:
    rows = RevenueEntry.objects.filter(**filters).order_by("id")
    return [(r.source, r.service_on, r.recognized_on, r.amount) for r in rows]


def total(**filters) -> Decimal:
    return RevenueEntry.objects.filter(**filters).aggregate(t=Sum("amount"))["t"] or D(0)


@given(
    amount=st.decimals(min_value=D("-100000"), max_value=D("100000"), places=2, allow_nan=False),
    seconds=st.lists(st.integers(min_value=1, max_value=86400), min_size=1, max_size=400),
)
def test_day_shares_sum_exactly_with_the_remainder_on_the_last_day(amount, seconds):
    weights = [(date(2027, 1, 1) + timedelta(days=i), s) for i, s in enumerate(seconds)]
    shares = day_shares(amount, "EUR", weights)
    assert sum((share for _, share in shares), D(0)) == amount
    assert all(share.as_tuple().exponent >= -2 for _, share in shares)
    # every day but the last is rounded toward zero, so none has the opposite sign of the amount
    assert all(share * amount > 0 for _, share in shares)


def test_day_weights_split_a_period_at_utc_midnight():
    assert day_weights(utc(2027, 4, 1, 18), utc(2027, 4, 3, 6)) == [
        (date(2027, 4, 1), 6 * 3600),
        (date(2027, 4, 2), 86400),
        (date(2027, 4, 3), 6 * 3600),
    ]


@pytest.mark.django_db
@pytest.mark.usefixtures("plans")
def test_a_fee_is_recognized_by_day_over_its_period():
    _, _, invoice = april_billed()
    rows = schedule(invoice=invoice)
    # 100.00 over 30 days: 3.33 a day toward zero, the last day takes 100.00 - 29 x 3.33 = 3.43
    assert rows == [("invoice", date(2027, 4, d), date(2027, 4, d), D("3.33")) for d in range(1, 30)] + [
        ("invoice", date(2027, 4, 30), date(2027, 4, 30), D("3.43"))
    ]
    assert {r.booked_on for r in RevenueEntry.objects.all()} == {date(2027, 4, 1)}
    assert {r.pattern for r in RevenueEntry.objects.all()} == {"ratable"}


@pytest.mark.django_db
@pytest.mark.usefixtures("plans")
def test_payments_never_move_revenue_and_a_credit_note_reverses_over_the_same_days():
    _, _, invoice = april_billed()
    before = schedule()
    invoice_mark_paid(actor=None, invoice=invoice, at=utc(2027, 4, 2))
    assert schedule() == before
    line = invoice.lines.get(kind="base_fee")
    note = credit_note_create(
        actor=None,
        invoice=invoice,
        reason="goodwill",
        lines=[CreditNoteLineInput(line.pk, D("60.00"))],
        at=utc(2027, 4, 10),
    )
    assert schedule(credit_note=note) == [
        ("credit_note", date(2027, 4, d), date(2027, 4, d), D("-2.00")) for d in range(1, 31)
    ]
    assert {r.booked_on for r in RevenueEntry.objects.filter(credit_note=note)} == {date(2027, 4, 10)}
    assert total() == D("40.00")


@pytest.mark.django_db
@pytest.mark.usefixtures("plans")
def test_a_void_reverses_what_the_invoice_still_holds():
    _, _, invoice = april_billed()
    line = invoice.lines.get(kind="base_fee")
    credit_note_create(
        actor=None,
        invoice=invoice,
        reason="goodwill",
        lines=[CreditNoteLineInput(line.pk, D("10.00"))],
        at=utc(2027, 4, 3),
    )
    invoice_void(actor=None, invoice=invoice, at=utc(2027, 4, 5))
    assert total() == 0
    voids = schedule(source="void")
    assert len(voids) == 30
    assert voids[0] == ("void", date(2027, 4, 1), date(2027, 4, 1), D("-3.00"))  # 3.33 - 0.33
    assert voids[-1] == (
        "void",
        date(2027, 4, 30),
        date(2027, 4, 30),
        D("-3.00"),
    )  # 3.43 - 0.43 (the note's own last-day remainder)


@pytest.mark.django_db
@pytest.mark.usefixtures("plans")
def test_a_closed_month_never_changes_and_later_corrections_land_in_the_first_open_month(staff):
    _, _, invoice = april_billed()
    closer = staff("finance")
    LogEntry.objects.all().delete()
    closed = revenue_month_close(actor=closer, month=date(2027, 4, 1), at=utc(2027, 5, 2))
    assert (closed.month, closed.closed_by) == (date(2027, 4, 1), closer)
    [entry] = LogEntry.objects.all()
    assert entry.actor == closer
    assert entry.changes["event"] == [None, "revenue.month_closed"]
    assert entry.changes["recognized"] == [None, {"EUR": "100.0000"}]
    april = schedule(recognized_on__lt=date(2027, 5, 1))
    line = invoice.lines.get(kind="base_fee")
    note = credit_note_create(
        actor=None, invoice=invoice, reason="late", lines=[CreditNoteLineInput(line.pk, D("30.00"))], at=utc(2027, 5, 3)
    )
    assert schedule(recognized_on__lt=date(2027, 5, 1)) == april
    rows = schedule(credit_note=note)
    assert rows[0] == ("credit_note", date(2027, 4, 1), date(2027, 5, 1), D("-1.00"))
    assert {r[2] for r in rows} == {date(2027, 5, 1)}
    assert total(recognized_on=date(2027, 5, 1)) == D("-30.00") + total(service_on=date(2027, 5, 1), source="invoice")


@pytest.mark.django_db
@pytest.mark.usefixtures("plans")
@pytest.mark.parametrize(
    ("month", "at", "code"),
    [
        (date(2027, 4, 1), utc(2027, 4, 30, 23), "month_not_ended"),
        (date(2027, 4, 2), utc(2027, 6, 1), "invalid_month"),
        (date(2027, 5, 1), utc(2027, 6, 1), "earlier_month_open"),
    ],
)
def test_refused_closes_write_nothing(month, at, code):
    april_billed()
    LogEntry.objects.all().delete()
    with pytest.raises(DomainError) as refused:
        revenue_month_close(actor=None, month=month, at=at)
    assert refused.value.code == code
    assert (RevenueMonthClose.objects.count(), LogEntry.objects.count()) == (0, 0)


@pytest.mark.django_db
@pytest.mark.usefixtures("plans")
def test_a_month_closes_once():
    april_billed()
    revenue_month_close(actor=None, month=date(2027, 4, 1), at=utc(2027, 5, 1))
    with pytest.raises(DomainError) as refused:
        revenue_month_close(actor=None, month=date(2027, 4, 1), at=utc(2027, 5, 2))
    assert refused.value.code == "month_closed"
    assert RevenueMonthClose.objects.count() == 1


def billed_net() -> Decimal:
    """What finalized, non-void invoices billed net of tax, less their credit notes."""
    invoices = Invoice.objects.exclude(status__in=("draft", "void")).aggregate(t=Sum("subtotal"))["t"] or D(0)
    notes = CreditNote.objects.exclude(invoice__status="void").aggregate(t=Sum("subtotal"))["t"] or D(0)
    return invoices - notes


@pytest.mark.django_db
@pytest.mark.usefixtures("plans")
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from((*OPS, "close")), st.integers(min_value=0, max_value=10_000)), min_size=1, max_size=14
    ),
)
def test_property_recognized_revenue_equals_billed_net_of_credit_notes(steps):
    """Over random sequences of bill / pay / void / credit note / plan change / cancel / month
    close across a few months: recognized revenue equals billed revenue net of credit notes (and
    voids) exactly, line by line, and a closed month's rows never change."""
    savepoint = transaction.savepoint()
    try:
        org = OrganizationFactory(external_id="acme", currency="EUR", country="DE")
        now, frozen = APRIL, {}
        with time_machine.travel(now, tick=False) as clock:
            sub = subscription_create(actor=None, organization=org, plan_version=version("flat"))
            billing_run(at=now)
            for op, n in steps:
                now += timedelta(seconds=(n * 211) % (12 * 86400) + 1)
                clock.move_to(now)
                if op == "close":
                    month = date(now.year, now.month, 1) - timedelta(days=1)
                    try:
                        revenue_month_close(actor=None, month=month.replace(day=1), at=now)
                        frozen[month.replace(day=1)] = schedule(recognized_on__range=(month.replace(day=1), month))
                    except DomainError:
                        pass
                else:
                    step(op, n, sub, now)
                assert total() == billed_net()
            now += timedelta(days=70)
            clock.move_to(now)
            billing_run(at=now)
        assert total() == billed_net()
        for line in InvoiceLine.objects.exclude(kind="discount").select_related("invoice"):
            credited = line.credit_note_lines.aggregate(t=Sum("amount"))["t"] or D(0)
            expected = D(0) if line.invoice.status in ("void", "draft") else line.net_amount - credited
            assert total(line=line) == expected, line
        for month, rows in frozen.items():
            last = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            assert schedule(recognized_on__range=(month, last)) == rows
    finally:
        transaction.savepoint_rollback(savepoint)
