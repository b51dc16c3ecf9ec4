"""Dunning on the test clock, up to 90 days after the first failure: every email (subjects in
order), every charge (method, amount, outcome), every step row and every transition (webhooks)
asserted, for: success at each retry; a hard decline through the final action; the card updated
on day 4; SEPA failing days after the attempt; a partial payment; settled by a credit note; two
overdue invoices where paying one is not enough. Each rerun of a day (two runs a day) must add nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry
from django.core import mail

from billing.models import Subscription
from billing.services.subscription import subscription_cancel
from core.money import Money
from dunning.models import DunningAccount, DunningCase, DunningPolicy, DunningStep
from dunning.selectors import entitlement_get
from invoicing.models import Invoice
from invoicing.services.billing_run import billing_run
from invoicing.services.invoice import CreditNoteLineInput, credit_note_create, invoice_mark_paid
from payments.gateways.base import ChargeResult, ChargeStatus, Failure, FailureCode
from payments.models import Payment
from payments.services.bank_transfer import bank_transfer_record
from payments.services.ledger import payment_result_record
from tests.dunning.conftest import Clock, card_set, events, subjects
from tests.helpers import utc
from tests.invoicing.test_invoice_api import april_open

D = Decimal
RETRY_DAYS = (1, 3, 5, 7, 10, 14)
NOTICE_DAYS = (0, 3, 7, 12, 14, 30)
FIRST_FAILURE = utc(2027, 4, 2, 0, 5)
SELLER = "Seller GmbH"


def failed_at_start(world, gateway, *outcomes: str, method: str = "pm_card_0341") -> tuple[Invoice, Clock]:
    """April's invoice (35.70) finalized; its collection (payment 1) declines at FIRST_FAILURE."""
    organization = world[0]
    organization.billing_email = "ap@acme.example"
    organization.save()
    card_set(organization, gateway, method, *outcomes)
    invoice = april_open(world)
    clock = Clock(start=FIRST_FAILURE)
    clock.work_outbox(FIRST_FAILURE)
    assert Payment.objects.get(invoice=invoice, number=1).status == "failed"
    return invoice, clock


def steps(clock: Clock, invoice: Invoice) -> list[tuple[int, str]]:
    return [(clock.day(s.at), s.step) for s in DunningStep.objects.filter(invoice=invoice).order_by("at", "id")]


def charges(invoice: Invoice) -> list[tuple[int, str, Decimal]]:
    return list(Payment.objects.filter(invoice=invoice).order_by("number").values_list("number", "status", "amount"))


def subject(kind: str, number: str) -> str:
    return {
        "failed": f"{SELLER}: Payment failed for invoice {number}",
        "reminder": f"{SELLER}: Reminder: invoice {number} is unpaid",
        "suspended": f"{SELLER}: Access suspended: invoice {number} is unpaid",
        "final": f"{SELLER}: Final notice: invoice {number}",
        "recovered": f"{SELLER}: Thank you: invoice {number} is paid",
        "receipt": f"Receipt for invoice {number} from {SELLER}",
    }[kind]


def assert_unpaid_to_the_final_action(clock: Clock, invoice: Invoice) -> None:
    """An invoice never paid, under the default policy: every notice, stage and webhook from the
    failure on day 0 to the final action on day 30, each once, on its day."""
    n = invoice.number
    assert subjects() == [
        subject("failed", n),
        subject("reminder", n),
        subject("reminder", n),
        subject("reminder", n),
        subject("suspended", n),
        subject("final", n),
    ]
    assert steps(clock, invoice) == [
        (0, "email:d0"),
        (3, "email:d3"),
        (7, "email:d7"),
        (10, "stage:restricted"),
        (12, "email:d12"),
        (14, "stage:suspended"),
        (14, "email:d14"),
        (30, "stage:final"),
        (30, "email:d30"),
    ]
    assert events() == [
        "dunning.past_due",
        "dunning.restricted",
        "dunning.suspended",
        "subscription.suspended",
        "dunning.final_action",
    ]


def state(organization) -> tuple:
    organization.refresh_from_db()
    subscription = Subscription.objects.get(organization=organization)
    value = entitlement_get(organization_id=organization.pk)
    return organization.status, subscription.status, value["status"], value["serve"], value["blocked_features"]


@pytest.mark.parametrize("k", range(1, 7))
def test_success_at_each_retry(world, gateway, endpoint, email_backend, k):
    invoice, clock = failed_at_start(world, gateway, *(["insufficient_funds"] * k), "ok")
    recovered_on = RETRY_DAYS[k - 1]
    clock.days(0, 90)

    assert gateway.confirms == [("pm_card_0341", "35.70", "insufficient_funds")] * k + [("pm_card_0341", "35.70", "ok")]
    assert charges(invoice) == [(n, "failed", D("35.70")) for n in range(1, k + 1)] + [(k + 1, "succeeded", D("35.70"))]
    reminders = [n for n in NOTICE_DAYS if n < recovered_on]
    assert subjects() == [
        *(subject("failed" if n == 0 else "reminder", invoice.number) for n in reminders),
        subject("receipt", invoice.number),
        subject("recovered", invoice.number),
    ]
    expected = [(n, f"email:d{n}", 2 if n in RETRY_DAYS[:k] else 1) for n in reminders]
    expected += [(d, f"retry:{i}", 1) for i, d in enumerate(RETRY_DAYS[:k], start=1)]
    if recovered_on > 10:
        expected.append((10, "stage:restricted", 2))
    expected.append((recovered_on, "email:recovered", 2))
    assert steps(clock, invoice) == [(d, name) for d, name, _ in sorted(expected, key=lambda e: (e[0], e[2]))]
    assert events() == ["dunning.past_due", *(["dunning.restricted"] if recovered_on > 10 else []), "dunning.recovered"]
    assert state(world[0]) == ("active", "active", "active", True, [])
    case = DunningCase.objects.get(invoice=invoice)
    assert (case.resolution, clock.day(case.closed_at)) == ("paid", recovered_on)


def test_hard_decline_is_not_retried_and_runs_to_the_final_action(world, gateway, endpoint, email_backend):
    invoice, clock = failed_at_start(world, gateway, "hard_decline")
    n = invoice.number
    clock.days(0, 9)
    assert state(world[0]) == ("past_due", "past_due", "past_due", True, [])
    clock.days(10, 13)
    assert state(world[0]) == ("past_due", "past_due", "past_due", True, ["plan_changes"])
    clock.days(14, 29)
    assert state(world[0]) == ("suspended", "suspended", "suspended", False, ["plan_changes", "usage"])
    clock.days(30, 90)
    assert state(world[0]) == ("suspended", "suspended", "final", False, ["plan_changes", "usage"])

    assert gateway.confirms == [("pm_card_0341", "35.70", "hard_decline")]  # never retried
    assert charges(invoice) == [(1, "failed", D("35.70"))]
    assert_unpaid_to_the_final_action(clock, invoice)
    subscription = Subscription.objects.get(organization=world[0])
    assert subscription.cancel_at_period_end and subscription.ended_at == utc(2027, 6, 1)  # the final action
    assert Invoice.objects.get(pk=invoice.pk).status == "open"
    account = DunningAccount.objects.get(organization=world[0])
    assert account.reason == f"unpaid after the final notice: invoice {n}"
    assert clock.day(account.since) == 30

    # paid by hand on day 91: active again, the subscription reactivated, a recovery note
    at = clock.start + timedelta(days=91)
    with time_machine.travel(at, tick=False):
        invoice_mark_paid(actor=None, invoice=invoice, reference="wire")
    clock.run(at + timedelta(hours=1))
    assert events()[-2:] == ["dunning.recovered", "subscription.reactivated"]
    assert subjects()[-1] == subject("recovered", n) and len(mail.outbox) == 7
    assert state(world[0]) == ("active", "active", "active", True, [])
    clock.days(92, 95)  # nothing more
    assert len(mail.outbox) == 7 and len(events()) == 7 and len(gateway.confirms) == 1


def test_card_updated_on_day_4_is_charged_at_once(world, gateway, endpoint, email_backend):
    invoice, clock = failed_at_start(world, gateway, "soft_decline")
    n = invoice.number
    clock.days(0, 3)
    updated = clock.start + timedelta(days=4, hours=10)
    with time_machine.travel(updated, tick=False):
        card_set(world[0], gateway, "pm_card_4242", "ok")  # the retry is opened at once
    assert Payment.objects.get(invoice=invoice, number=4).payment_method_id == "pm_card_4242"
    clock.work_outbox(updated)
    clock.run(updated + timedelta(minutes=55))
    clock.days(5, 90)

    assert gateway.confirms == [
        ("pm_card_0341", "35.70", "soft_decline"),
        ("pm_card_0341", "35.70", "soft_decline"),
        ("pm_card_0341", "35.70", "soft_decline"),
        ("pm_card_4242", "35.70", "ok"),
    ]
    assert charges(invoice) == [(1, "failed", D("35.70")), (2, "failed", D("35.70")), (3, "failed", D("35.70")),
                                (4, "succeeded", D("35.70"))]  # fmt: skip
    assert subjects() == [subject("failed", n), subject("reminder", n), subject("receipt", n), subject("recovered", n)]
    assert steps(clock, invoice) == [
        (0, "email:d0"),
        (1, "retry:1"),
        (3, "retry:2"),
        (3, "email:d3"),
        (4, "retry:method:pm_card_4242"),
        (4, "email:recovered"),
    ]
    assert events() == ["dunning.past_due", "dunning.recovered"]
    assert state(world[0]) == ("active", "active", "active", True, [])


def test_partial_payment_then_the_retry_charges_the_rest(world, gateway, endpoint, email_backend):
    invoice, clock = failed_at_start(world, gateway, "insufficient_funds", "insufficient_funds", "ok")
    n = invoice.number
    clock.days(0, 1)
    at = clock.start + timedelta(days=2, hours=12)
    with time_machine.travel(at, tick=False):
        bank_transfer_record(actor=None, invoice_id=invoice.pk, amount=Money(D("20.00"), "EUR"), received_on=at.date())
    clock.work_outbox(at)
    clock.days(2, 90)

    assert gateway.confirms == [
        ("pm_card_0341", "35.70", "insufficient_funds"),
        ("pm_card_0341", "35.70", "insufficient_funds"),
        ("pm_card_0341", "15.70", "ok"),  # what the transfer left due
    ]
    assert charges(invoice) == [
        (1, "failed", D("35.70")),
        (2, "failed", D("35.70")),
        (3, "succeeded", D("20.00")),  # the bank transfer
        (4, "succeeded", D("15.70")),
    ]
    assert subjects() == [
        subject("failed", n),
        subject("receipt", n),
        subject("receipt", n),
        subject("recovered", n),
    ]
    assert steps(clock, invoice) == [(0, "email:d0"), (1, "retry:1"), (3, "retry:2"), (3, "email:recovered")]
    assert events() == ["dunning.past_due", "dunning.recovered"]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == ("paid", D("35.70"), D("0"))


def test_settled_by_a_credit_note_closes_without_a_recovery_note(world, gateway, endpoint, email_backend):
    invoice, clock = failed_at_start(world, gateway, "soft_decline")
    n = invoice.number
    clock.days(0, 5)
    at = clock.start + timedelta(days=5, hours=12)
    line = invoice.lines.get(kind="base_fee")
    with time_machine.travel(at, tick=False):
        credit_note_create(
            actor=None, invoice=invoice, reason="goodwill", lines=[CreditNoteLineInput(line.pk, line.net_amount)]
        )
    clock.run(at + timedelta(hours=1))
    clock.days(6, 90)

    assert [c[2] for c in gateway.confirms] == ["soft_decline"] * 4  # first try, retries of days 1, 3, 5
    assert subjects() == [subject("failed", n), subject("reminder", n)]
    assert steps(clock, invoice) == [(0, "email:d0"), (1, "retry:1"), (3, "retry:2"), (3, "email:d3"), (5, "retry:3")]
    assert events() == ["dunning.past_due", "dunning.recovered"]
    case = DunningCase.objects.get(invoice=invoice)
    assert (case.resolution, clock.day(case.closed_at)) == ("credited", 5)
    assert state(world[0]) == ("active", "active", "active", True, [])


def test_two_overdue_invoices_paying_one_is_not_enough(world, gateway, endpoint, email_backend):
    DunningPolicy.objects.create(final_day=45)  # the tenant's policy: the final action later
    april, clock = failed_at_start(world, gateway, "hard_decline")
    clock.days(0, 29)
    billing_run(at=utc(2027, 5, 1))
    billing_run(at=utc(2027, 5, 2))
    may = Invoice.objects.get(organization=world[0], bill_point=utc(2027, 5, 1))
    clock.work_outbox(utc(2027, 5, 2, 0, 5))  # May's collection declines: its own case from day 30
    clock.days(30, 34)
    assert state(world[0]) == ("suspended", "suspended", "suspended", False, ["plan_changes", "usage"])
    paid_at = clock.start + timedelta(days=35, hours=12)
    with time_machine.travel(paid_at, tick=False):
        invoice_mark_paid(actor=None, invoice=april, reference="wire")
    clock.run(paid_at + timedelta(hours=1))
    # April settled, May still overdue (its day 5): past due, usage back, no recovery note
    assert state(world[0]) == ("past_due", "past_due", "past_due", True, [])
    clock.days(36, 39)
    with time_machine.travel(paid_at + timedelta(days=5), tick=False):
        invoice_mark_paid(actor=None, invoice=may, reference="wire")
    clock.run(paid_at + timedelta(days=5, hours=1))
    clock.days(41, 90)

    a, m = april.number, may.number
    assert gateway.confirms == [("pm_card_0341", "35.70", "hard_decline"), ("pm_card_0341", "35.70", "hard_decline")]
    assert subjects() == [
        subject("failed", a),
        subject("reminder", a),
        subject("reminder", a),
        subject("reminder", a),
        subject("suspended", a),
        subject("failed", m),
        subject("reminder", m),
        subject("reminder", m),
        subject("recovered", m),
    ]
    assert steps(clock, april) == [
        (0, "email:d0"),
        (3, "email:d3"),
        (7, "email:d7"),
        (10, "stage:restricted"),
        (12, "email:d12"),
        (14, "stage:suspended"),
        (14, "email:d14"),
    ]
    assert steps(clock, may) == [(30, "email:d0"), (33, "email:d3"), (37, "email:d7"), (40, "email:recovered")]
    assert events() == [
        "dunning.past_due",
        "dunning.restricted",
        "dunning.suspended",
        "subscription.suspended",
        "dunning.past_due",
        "subscription.reactivated",
        "dunning.recovered",
    ]
    assert state(world[0]) == ("active", "active", "active", True, [])


def test_the_customer_cancels_during_dunning(world, gateway, endpoint, email_backend):
    """The customer cancels on day 5 (at the period's end): cancelling is not a plan change and
    stays possible in dunning; what is owed is still dunned to the final action, which finds
    nothing left to cancel (the subscription keeps the customer's end, not the next period's)."""
    invoice, clock = failed_at_start(world, gateway, "hard_decline")
    clock.days(0, 5)
    subscription = Subscription.objects.get(organization=world[0])
    with time_machine.travel(clock.start + timedelta(days=5, hours=3), tick=False):
        subscription_cancel(actor=None, subscription=subscription, at_period_end=True)
    clock.days(6, 90)

    assert gateway.confirms == [("pm_card_0341", "35.70", "hard_decline")]
    assert charges(invoice) == [(1, "failed", D("35.70"))]
    assert_unpaid_to_the_final_action(clock, invoice)
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end and subscription.ended_at == utc(2027, 5, 1)  # the customer's
    cancels = LogEntry.objects.get_for_object(subscription).filter(changes__event__1="subscription.cancel")
    assert cancels.count() == 1
    assert state(world[0]) == ("suspended", "suspended", "final", False, ["plan_changes", "usage"])
    assert Invoice.objects.get(pk=invoice.pk).status == "open"  # still owed


def debit_settles(clock: Clock, invoice: Invoice, number: int, at, *, failure: str = "") -> None:
    """The debit's webhook (`payment_intent.payment_failed` or `.succeeded`) applied at `at`,
    through the ledger as the webhook apply does, and the outbox worked after it."""
    payment = Payment.objects.get(invoice=invoice, number=number)
    assert payment.status == "processing"
    if failure:
        result = ChargeResult(
            payment.gateway_payment_id,
            ChargeStatus.FAILED,
            payment.money,
            payment.payment_method_id,
            failure=Failure(FailureCode(failure), "The debit was returned."),
        )
    else:
        result = ChargeResult(
            payment.gateway_payment_id, ChargeStatus.SUCCEEDED, payment.money, payment.payment_method_id
        )
    with time_machine.travel(at, tick=False):
        assert payment_result_record(payment_id=payment.pk, result=result, gateway_at=at)
    clock.work_outbox(at)


def test_sepa_failing_days_after_the_attempt(world, gateway, endpoint, email_backend):
    """A SEPA debit is `processing` for days before it fails: no case (nor email) until then, the
    days count from the failure, and the reminders (and the next retry) wait while a debit is in
    flight, so the customer gets only the failure notice; the third debit succeeds on day 6 and the
    case closes paid."""
    organization = world[0]
    organization.billing_email = "ap@acme.example"
    organization.save()
    card_set(organization, gateway, "pm_sepa_3000", "processing", kind="sepa_debit")
    invoice = april_open(world)
    n = invoice.number
    before = Clock(start=FIRST_FAILURE)
    before.work_outbox(FIRST_FAILURE)
    before.days(0, 2)  # the debit is in flight: nothing to dun
    assert charges(invoice) == [(1, "processing", D("35.70"))]
    assert DunningCase.objects.count() == 0 and subjects() == [] and events() == []

    returned = FIRST_FAILURE + timedelta(days=3)  # the bank returns it
    debit_settles(before, invoice, 1, returned, failure="insufficient_funds")
    clock = Clock(start=returned)
    clock.days(0, 2)  # day 1: the retry (debit 2), in flight from then on
    debit_settles(clock, invoice, 2, returned + timedelta(days=3, minutes=30), failure="insufficient_funds")
    clock.days(3, 5)  # day 3: retry 2 at once (debit 3), in flight: day 3's reminder and day 5's retry wait
    debit_settles(clock, invoice, 3, returned + timedelta(days=6, minutes=30))
    clock.days(6, 90)

    assert gateway.confirms == [("pm_sepa_3000", "35.70", "processing")] * 3
    assert charges(invoice) == [(1, "failed", D("35.70")), (2, "failed", D("35.70")), (3, "succeeded", D("35.70"))]
    assert subjects() == [subject("failed", n), subject("receipt", n), subject("recovered", n)]
    assert steps(clock, invoice) == [(0, "email:d0"), (1, "retry:1"), (3, "retry:2"), (6, "email:recovered")]
    assert events() == ["dunning.past_due", "dunning.recovered"]
    assert state(organization) == ("active", "active", "active", True, [])
    case = DunningCase.objects.get(invoice=invoice)
    assert (case.resolution, clock.day(case.started_at), clock.day(case.closed_at)) == ("paid", 0, 6)
