"""Revenue recognition (issue 14, item 4): each finalized line's monthly schedule, credit notes
and voids reversing per month, the month close, and the property that over a subscription's life
recognized revenue equals billed revenue net of credit notes and voids, exactly.

Plans of tests/invoicing/test_unused_time_credit.py: Flat 100.00 EUR a month in advance (Pro
200.00, Lite 50.00); Acme on Flat since April 1st 2027 (30 days), no grace period, no tax. The
anniversary subscription from April 20th: its first invoice covers April 20th to May 20th (30
days), 11 of them in April: 100.00 x 11/30 = 36.666... rounded toward zero to 36.66, May takes
the remainder 63.34."""

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
from invoicing.services.revenue import month_shares, month_weights, revenue_month_close
from tests.factories import OrganizationFactory, SubscriptionFactory
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
APR, MAY, JUN = date(2027, 4, 30), date(2027, 5, 31), date(2027, 6, 30)


def schedule(**filters) -> list[tuple[str, date, date, Decimal]]:
    rows = RevenueEntry.objects.filter(**filters).order_by("id")
    return [(r.source, r.service_on, r.recognized_on, r.amount) for r in rows]


def total(**filters) -> Decimal:
    return RevenueEntry.objects.filter(**filters).aggregate(t=Sum("amount"))["t"] or D(0)


def anniversary_billed() -> Invoice:
    org = OrganizationFactory(external_id="acme", currency="EUR", country="DE", name="Acme GmbH")
    SubscriptionFactory(organization=org, plan="flat", at=utc(2027, 4, 20), billing_mode="anniversary")
    billing_run(at=utc(2027, 4, 20))
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.subtotal) == ("open", D("100.00"))
    return invoice


@given(
    amount=st.decimals(min_value=D("-100000"), max_value=D("100000"), places=2, allow_nan=False),
    seconds=st.lists(st.integers(min_value=1, max_value=31 * 86400), min_size=1, max_size=40),
)
def test_month_shares_sum_exactly_with_the_remainder_on_the_last_month(amount, seconds):
    weights = [(date(2027 + i // 12, i % 12 + 1, 1), s) for i, s in enumerate(seconds)]
    shares = month_shares(amount, "EUR", weights)
    assert sum((share for _, share in shares), D(0)) == amount
    assert all(share.as_tuple().exponent >= -2 for _, share in shares)
    # every month but the last is rounded toward zero, so none has the opposite sign of the amount
    assert all(share * amount > 0 for _, share in shares)


def test_month_shares_round_toward_zero_at_the_named_point():
    weights = [(APR, 11), (MAY, 19)]
    assert month_shares(D("100.00"), "EUR", weights) == [(APR, D("36.66")), (MAY, D("63.34"))]
    assert month_shares(D("-10.00"), "EUR", weights) == [(APR, D("-3.66")), (MAY, D("-6.34"))]
    assert month_shares(D("100"), "JPY", weights) == [(APR, D("36")), (MAY, D("64"))]
    assert month_shares(D("0.01"), "EUR", weights) == [(MAY, D("0.01"))]  # a zero share has no row


def test_month_weights_split_a_period_at_utc_month_ends():
    assert month_weights(utc(2027, 4, 30, 18), utc(2027, 6, 2, 6)) == [
        (APR, 6 * 3600),
        (MAY, 31 * 86400),
        (JUN, 30 * 3600),
    ]
    assert month_weights(utc(2027, 4, 1), utc(2027, 5, 1)) == [(APR, 30 * 86400)]


@pytest.mark.django_db
@pytest.mark.usefixtures("plans")
def test_a_calendar_month_fee_is_one_row():
    _, _, invoice = april_billed()
    assert schedule(invoice=invoice) == [("invoice", APR, APR, D("100.00"))]
    [row] = RevenueEntry.objects.all()
    assert (row.booked_on, row.pattern, row.currency) == (date(2027, 4, 1), "ratable", "EUR")


@pytest.mark.django_db
@pytest.mark.usefixtures("plans")
def test_a_fee_is_recognized_by_month_over_its_period():
    invoice = anniversary_billed()
    assert schedule(invoice=invoice) == [("invoice", APR, APR, D("36.66")), ("invoice", MAY, MAY, D("63.34"))]
    assert {r.booked_on for r in RevenueEntry.objects.all()} == {date(2027, 4, 20)}
    assert {r.pattern for r in RevenueEntry.objects.all()} == {"ratable"}


@pytest.mark.django_db
@pytest.mark.usefixtures("plans")
def test_payments_never_move_revenue_and_a_credit_note_reverses_over_the_same_months():
    invoice = anniversary_billed()
    before = schedule()
    invoice_mark_paid(actor=None, invoice=invoice, at=utc(2027, 4, 21))
    assert schedule() == before
    line = invoice.lines.get(kind="base_fee")
    note = credit_note_create(
        actor=None,
        invoice=invoice,
        reason="goodwill",
        lines=[CreditNoteLineInput(line.pk, D("10.00"))],
        at=utc(2027, 4, 25),
    )
    assert schedule(credit_note=note) == [
        ("credit_note", APR, APR, D("-3.66")),
        ("credit_note", MAY, MAY, D("-6.34")),
    ]
    assert {r.booked_on for r in RevenueEntry.objects.filter(credit_note=note)} == {date(2027, 4, 25)}
    assert total() == D("90.00")


@pytest.mark.django_db
@pytest.mark.usefixtures("plans")
def test_a_void_reverses_what_the_invoice_still_holds():
    invoice = anniversary_billed()
    line = invoice.lines.get(kind="base_fee")
    credit_note_create(
        actor=None,
        invoice=invoice,
        reason="goodwill",
        lines=[CreditNoteLineInput(line.pk, D("10.00"))],
        at=utc(2027, 4, 22),
    )
    invoice_void(actor=None, invoice=invoice, at=utc(2027, 4, 24))
    assert total() == 0
    # 36.66 - 3.66 and 63.34 - 6.34 (each with its own remainder on the last month)
    assert schedule(source="void") == [("void", APR, APR, D("-33.00")), ("void", MAY, MAY, D("-57.00"))]
    assert {r.booked_on for r in RevenueEntry.objects.filter(source="void")} == {date(2027, 4, 24)}


@pytest.mark.django_db
@pytest.mark.usefixtures("plans")
def test_a_closed_month_never_changes_and_later_corrections_land_in_the_first_open_month(staff):
    invoice = anniversary_billed()
    closer = staff("finance")
    LogEntry.objects.all().delete()
    closed = revenue_month_close(actor=closer, month=date(2027, 4, 1), at=utc(2027, 5, 2))
    assert (closed.month, closed.closed_by) == (date(2027, 4, 1), closer)
    [entry] = LogEntry.objects.all()
    assert entry.actor == closer
    assert entry.changes["event"] == [None, "revenue.month_closed"]
    assert entry.changes["recognized"] == [None, {"EUR": "36.6600"}]
    april = schedule(recognized_on__lt=date(2027, 5, 1))
    line = invoice.lines.get(kind="base_fee")
    note = credit_note_create(
        actor=None, invoice=invoice, reason="late", lines=[CreditNoteLineInput(line.pk, D("30.00"))], at=utc(2027, 5, 3)
    )
    assert schedule(recognized_on__lt=date(2027, 5, 1)) == april == [("invoice", APR, APR, D("36.66"))]
    # April's share of the note (30.00 x 11/30) keeps its service month, recognized in May
    assert schedule(credit_note=note) == [
        ("credit_note", APR, MAY, D("-11.00")),
        ("credit_note", MAY, MAY, D("-19.00")),
    ]
    assert total(recognized_on=MAY) == D("63.34") - D("30.00")


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
