"""Revenue analytics (issue 14 item 3): every figure recomputed by hand from seeded subscriptions,
invoices and payments, at several as-of days, and the page that shows the snapshots.

The world (UTC; the main as-of day is 2026-06-15, i.e. the state at 2026-06-16 00:00):

| org | history | MRR end of May | MRR 15 June | June movement |
|---|---|---|---|---|
| A | monthly 100 from 1 Jan; on monthly 250 from 10 June (a coupon on usage only) | 100 | 250 | expansion 150 |
| B | monthly 250 from 1 Feb; on monthly 100 from 5 June | 250 | 100 | contraction 150 |
| C | monthly 100 from 1 Mar, ended 12 June | 100 | 0 | churn 100 |
| D | quarterly 90 (30/month) 15 Jan to 15 Mar; yearly 1,200 from 3 June | 0 | 100 | reactivation 100 |
| E | monthly 100 from 1 June, trial to 5 June, 20 % off forever | 0 | 80 | new 80 |
| F | monthly 100 from 1 June, trial to 20 June | 0 | 0 | — |
| H | monthly 100 from 1 July (pending) | 0 | 0 | — |
| G | EUR monthly 50 from 1 April | 50 € | 50 € | — |
| J | GBP monthly 100 from 10 March, 30 off for 3 months (to 10 June) | 70 £ | 100 £ | expansion 30 £ |
| K | GBP monthly 100 from 1 May, 50 % off once in June (not MRR) | 100 £ | 100 £ | — |

Money in June (USD): 50.00 of B's 300.00 payment refunded on the 12th (and 10.00 more pending),
D's 80.00 invoice written off on the 8th, and C's payment of 100.00 made on 30 May that failed on
1 June.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from accounts.audit import audit_event
from adminpanel.analytics import revenue_data_load, revenue_figures, revenue_snapshot_take
from adminpanel.models import RevenueSnapshot
from billing.models import Coupon, CouponRedemption, PlanVersion, Subscription, SubscriptionPhase
from invoicing.models import CreditNote, Invoice, InvoiceLine
from invoicing.services.invoice import invoice_mark_uncollectible
from payments.models import Payment, Refund
from tests.factories import OrganizationFactory, PlanFactory

_numbers = itertools.count(1)


def t(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def version(code: str) -> PlanVersion:
    return PlanVersion.objects.get(plan__code=code)


def subscribe(org, phases, *, started, ended=None, trial_end=None) -> Subscription:
    """A subscription with its phases [(plan code, starts, ends)], written directly: the figures
    read only these columns, and the history spans months the services would not backdate."""
    sub = Subscription.objects.create(
        organization=org,
        plan_version=version(phases[-1][0]),
        status="ended" if ended else "active",
        billing_anchor=started,
        started_at=started,
        current_period_start=started,
        current_period_end=t(2026, 7, 1) if started < t(2026, 7, 1) else t(2026, 8, 1),
        ended_at=ended,
        trial_end=trial_end,
    )
    for code, starts, ends in phases:
        SubscriptionPhase.objects.create(subscription=sub, plan_version=version(code), starts_at=starts, ends_at=ends)
    return sub


def invoice(org, *, total, issued, due, currency="USD", credits="0", paid=None, voided=None, usage=()) -> Invoice:
    status = "void" if voided else "paid" if paid else "open"
    inv = Invoice.objects.create(
        organization=org,
        status=status,
        number=f"INV-{next(_numbers)}",
        currency=currency,
        total=Decimal(total),
        subtotal=Decimal(total),
        credits_applied=Decimal(credits),
        amount_due=Decimal(0) if paid or voided else Decimal(total) - Decimal(credits),
        issued_at=issued,
        due_at=due,
        paid_at=paid,
        voided_at=voided,
    )
    # a base-fee line, never usage revenue, then the usage lines (kind, service period start, net)
    lines = [("base_fee", issued, "100.00"), *usage]
    for position, (kind, start, net) in enumerate(lines):
        InvoiceLine.objects.create(
            invoice=inv,
            position=position,
            kind=kind,
            description=kind,
            currency=currency,
            amount=Decimal(net),
            net_amount=Decimal(net),
            period_start=start,
            period_end=start,
            billing_period_start=start,
            billing_period_end=start,
        )
    return inv


def pay(inv, *, amount, status, created, applied=None, failed=None) -> Payment:
    payment = Payment.objects.create(
        invoice=inv,
        organization=inv.organization,
        number=next(_numbers),
        idempotency_key=f"payment:{next(_numbers)}",
        gateway="stripe",
        amount=Decimal(amount),
        currency=inv.currency,
        status=status,
        applied_at=applied,
        gateway_state_at=failed or applied,
    )
    Payment.objects.filter(pk=payment.pk).update(created_at=created)  # auto_now_add
    return payment


def redeem(sub, *, code, redeemed, covers_until=None, **coupon) -> CouponRedemption:
    """A coupon and its redemption, written directly (backdated, as the subscriptions are)."""
    return CouponRedemption.objects.create(
        coupon=Coupon.objects.create(code=code, name=code, **coupon),
        organization=sub.organization,
        subscription=sub,
        redeemed_at=redeemed,
        covers_from=redeemed,
        covers_until=covers_until,
    )


def refund(payment, *, amount, status, number, succeeded=None) -> Refund:
    note = CreditNote.objects.create(
        invoice=payment.invoice, number=number, reason="refund", currency=payment.currency,
        subtotal=Decimal(amount), tax_total=Decimal(0), total=Decimal(amount), applied_to_invoice=Decimal(0),
        created_at=succeeded or t(2026, 6, 12),
    )  # fmt: skip
    row = Refund.objects.create(
        payment=payment,
        credit_note=note,
        amount=Decimal(amount),
        currency=payment.currency,
        idempotency_key=f"refund:{number}",
        status=status,
    )
    if succeeded:  # what refund_result_record writes when the gateway says so
        with time_machine.travel(succeeded, tick=False):
            audit_event(row, event="refund.succeeded", status=("pending", "succeeded"))
    return row


@pytest.fixture
def world(in_a):
    PlanFactory(code="m100", base_fee="100.00")
    PlanFactory(code="m250", base_fee="250.00")
    PlanFactory(code="q90", base_fee="90.00", interval="quarter")
    PlanFactory(code="y1200", base_fee="1200.00", interval="year")
    PlanFactory(code="eur50", base_fee="50.00", currency="EUR")
    PlanFactory(code="gbp100", base_fee="100.00", currency="GBP")
    orgs = {name: OrganizationFactory(external_id=name) for name in "ABCDEFGHJK"}
    for name, currency in (("G", "EUR"), ("J", "GBP"), ("K", "GBP")):
        orgs[name].currency = currency
        orgs[name].save()
    sub_a = subscribe(
        orgs["A"], [("m100", t(2026, 1, 1), t(2026, 6, 10)), ("m250", t(2026, 6, 10), None)], started=t(2026, 1, 1)
    )
    # usage only: never MRR
    redeem(sub_a, code="usage-half", redeemed=t(2026, 2, 1), discount_type="percentage", percent_off=Decimal(50),
           duration="forever", applies_to="charges")  # fmt: skip
    subscribe(orgs["B"], [("m250", t(2026, 2, 1), t(2026, 6, 5)), ("m100", t(2026, 6, 5), None)], started=t(2026, 2, 1))
    subscribe(orgs["C"], [("m100", t(2026, 3, 1), None)], started=t(2026, 3, 1), ended=t(2026, 6, 12))
    subscribe(orgs["D"], [("q90", t(2026, 1, 15), None)], started=t(2026, 1, 15), ended=t(2026, 3, 15))
    subscribe(orgs["D"], [("y1200", t(2026, 6, 3), None)], started=t(2026, 6, 3))
    sub_e = subscribe(orgs["E"], [("m100", t(2026, 6, 1), None)], started=t(2026, 6, 1), trial_end=t(2026, 6, 5))
    redeem(sub_e, code="fifth", redeemed=t(2026, 6, 1), discount_type="percentage", percent_off=Decimal(20),
           duration="forever")  # fmt: skip
    subscribe(orgs["F"], [("m100", t(2026, 6, 1), None)], started=t(2026, 6, 1), trial_end=t(2026, 6, 20))
    subscribe(orgs["H"], [("m100", t(2026, 7, 1), None)], started=t(2026, 7, 1))
    subscribe(orgs["G"], [("eur50", t(2026, 4, 1), None)], started=t(2026, 4, 1))
    sub_j = subscribe(orgs["J"], [("gbp100", t(2026, 3, 10), None)], started=t(2026, 3, 10))
    redeem(sub_j, code="thirty-off", redeemed=t(2026, 3, 10), covers_until=t(2026, 6, 10), discount_type="fixed",
           amount_off=Decimal(30), currency="GBP", duration="repeating", duration_periods=3,
           applies_to="base_fee")  # fmt: skip
    sub_k = subscribe(orgs["K"], [("gbp100", t(2026, 5, 1), None)], started=t(2026, 5, 1))
    redeem(sub_k, code="half-once", redeemed=t(2026, 6, 1), covers_until=t(2026, 7, 1), discount_type="percentage",
           percent_off=Decimal(50), duration="once")  # fmt: skip

    a, b, c, d = orgs["A"], orgs["B"], orgs["C"], orgs["D"]
    # usage: Feb (outside the 3 closed months), Mar 30.00, Apr 12.50 + 7.50 minimum, May 40.02;
    # a voided invoice's and a not-yet-issued invoice's usage never count
    inv1 = invoice(a, total="155.00", credits="5.00", issued=t(2026, 6, 1), due=t(2026, 6, 15),
                   usage=[("usage", t(2026, 5, 1), "40.02")])  # fmt: skip
    inv2 = invoice(b, total="300.00", issued=t(2026, 5, 1), due=t(2026, 5, 15), paid=t(2026, 6, 4),
                   usage=[("usage", t(2026, 4, 1), "12.50"), ("charge_minimum", t(2026, 4, 1), "7.50")])  # fmt: skip
    inv3 = invoice(
        c, total="130.00", issued=t(2026, 4, 1), due=t(2026, 4, 15), usage=[("usage", t(2026, 3, 1), "30.00")]
    )
    invoice(c, total="999.00", issued=t(2026, 5, 1), due=t(2026, 5, 15), voided=t(2026, 5, 2),
            usage=[("usage", t(2026, 4, 1), "999.00")])  # fmt: skip
    inv6 = invoice(d, total="80.00", issued=t(2026, 2, 1), due=t(2026, 3, 1))
    inv7 = invoice(d, total="11.00", issued=t(2026, 3, 1), due=t(2026, 3, 15), paid=t(2026, 3, 5),
                   usage=[("usage", t(2026, 2, 1), "11.00")])  # fmt: skip
    inv8 = invoice(a, total="60.00", issued=t(2026, 6, 14), due=t(2026, 6, 28))
    invoice(b, total="5.00", issued=t(2026, 6, 20), due=t(2026, 7, 4), usage=[("usage", t(2026, 5, 1), "5.00")])
    inv9 = invoice(
        orgs["G"], total="50.00", currency="EUR", issued=t(2026, 6, 1), due=t(2026, 6, 15), paid=t(2026, 6, 2)
    )

    CreditNote.objects.create(
        invoice=inv3, number="CN-1", reason="goodwill", currency="USD", subtotal=Decimal("30.00"),
        tax_total=Decimal(0), total=Decimal("30.00"), applied_to_invoice=Decimal("30.00"), created_at=t(2026, 5, 1),
    )  # fmt: skip
    pay(inv1, amount="150.00", status="failed", created=t(2026, 6, 2))
    pay(inv1, amount="100.00", status="succeeded", created=t(2026, 6, 10), applied=t(2026, 6, 10))
    pay(inv2, amount="300.00", status="failed", created=t(2026, 6, 3))
    paid2 = pay(inv2, amount="300.00", status="succeeded", created=t(2026, 6, 4), applied=t(2026, 6, 4))
    refund(paid2, amount="50.00", status="succeeded", number="CN-2", succeeded=t(2026, 6, 12, 10))
    refund(paid2, amount="10.00", status="pending", number="CN-3")
    pay(inv6, amount="80.00", status="failed", created=t(2026, 6, 5))
    invoice_mark_uncollectible(actor=None, invoice=inv6, at=t(2026, 6, 8))
    # made in May, failed in June: a June failure
    pay(inv3, amount="100.00", status="failed", created=t(2026, 5, 30), failed=t(2026, 6, 1))
    pay(inv8, amount="60.00", status="pending", created=t(2026, 6, 12))
    pay(inv7, amount="11.00", status="succeeded", created=t(2026, 3, 5), applied=t(2026, 3, 5))
    pay(inv9, amount="50.00", status="succeeded", created=t(2026, 6, 2), applied=t(2026, 6, 2))
    return orgs


def test_every_figure_of_a_day_recomputed_by_hand(world):
    figures = revenue_figures(day=date(2026, 6, 15), data=revenue_data_load())
    assert sorted(figures) == ["EUR", "GBP", "USD"]
    usd = figures["USD"]
    # A 250 (its coupon is on usage) + B 100 + D 1,200/12 + E 100 less 20 %; C ended, F in trial,
    # H not started
    assert usd["mrr"] == "530.00"
    assert usd["arr"] == "6360.00"
    assert usd["customers"] == 4
    assert usd["arpa"] == "132.50"
    assert usd["usage_last_period"] == {"month": "2026-05", "amount": "40.02"}
    assert usd["usage_avg_3m"] == "30.01"  # (30.00 + 20.00 + 40.02) / 3 = 30.0066…
    assert usd["movements"] == {
        "month": "2026-06",
        "new": "80.00",
        "expansion": "150.00",
        "contraction": "150.00",
        "churn": "100.00",
        "reactivation": "100.00",
        "net": "80.00",  # 530 - 450
        "customers_start": 3,
        "customers_new": 1,
        "customers_reactivated": 1,
        "customers_churned": 1,
    }
    assert usd["customer_churn_rate"] == "33.3"
    # Dec and Jan had no customers at their start; Feb 0/2, Mar 1/3 (D), Apr 0/3, May 0/3
    assert usd["customer_churn_rate_6m"] == "8.3"
    assert usd["ltv"] == "1590.00"  # 132.50 ÷ (1/12)
    assert usd["invoiced"] == "215.00"  # 155 + 60 issued in June up to the 15th
    assert usd["collected_gross"] == "400.00"  # 100 on the 10th + 300 on the 4th
    assert usd["refunded"] == "50.00"  # succeeded on the 12th; the pending 10.00 is not
    assert usd["collected"] == "350.00"
    assert usd["outstanding"] == "210.00"  # 150 - 100, 130 - 30 credit note, 60; D's 80 written off
    assert usd["written_off"] == "80.00"
    assert usd["aging"] == {"current": "60.00", "0-30": "50.00", "31-60": "0.00", "61-90": "100.00", "90+": "0.00"}
    assert usd["payments_settled"] == 6  # failed on 1, 2, 3 and 5 June; succeeded on 4 and 10 June
    assert usd["payments_failed"] == 4
    assert usd["failed_payment_rate"] == "66.7"
    assert usd["invoices_failed"] == 4
    assert usd["invoices_recovered"] == 1  # inv2
    assert usd["recovery_rate"] == "25.0"
    assert usd["cohorts"] == [
        {
            "cohort": "2026-01",  # A 100 and D 30
            "customers": 2,
            "mrr": "130.00",
            "retention": [
                {"nrr": "100.0", "grr": "100.0"},
                {"nrr": "100.0", "grr": "100.0"},
                {"nrr": "76.9", "grr": "76.9"},  # D churned: 100 / 130
                {"nrr": "76.9", "grr": "76.9"},
                {"nrr": "76.9", "grr": "76.9"},
                {"nrr": "269.2", "grr": "100.0"},  # A 250 + D 100 back; gross caps at 100 + 30
            ],
        },
        {
            "cohort": "2026-02",
            "customers": 1,
            "mrr": "250.00",
            "retention": [{"nrr": "100.0", "grr": "100.0"}] * 4 + [{"nrr": "40.0", "grr": "40.0"}],
        },
        {
            "cohort": "2026-03",
            "customers": 1,
            "mrr": "100.00",
            "retention": [{"nrr": "100.0", "grr": "100.0"}] * 3 + [{"nrr": "0.0", "grr": "0.0"}],
        },
        {"cohort": "2026-06", "customers": 1, "mrr": "80.00", "retention": [{"nrr": "100.0", "grr": "100.0"}]},
    ]
    eur = figures["EUR"]
    assert (eur["mrr"], eur["arr"], eur["customers"], eur["arpa"]) == ("50.00", "600.00", 1, "50.00")
    assert eur["movements"]["net"] == "0.00"
    assert eur["customer_churn_rate"] == "0.0"
    assert eur["customer_churn_rate_6m"] == "0.0"  # May only (G started in April)
    assert eur["ltv"] is None  # no churn: ChartMogul shows none
    assert (eur["invoiced"], eur["collected"], eur["outstanding"]) == ("50.00", "50.00", "0.00")
    assert eur["failed_payment_rate"] == "0.0"
    assert eur["recovery_rate"] is None
    assert eur["cohorts"] == [
        {"cohort": "2026-04", "customers": 1, "mrr": "50.00", "retention": [{"nrr": "100.0", "grr": "100.0"}] * 3}
    ]
    gbp = figures["GBP"]
    # J's 30 off ended on the 10th; K's once coupon is a one-off, not less MRR
    assert (gbp["mrr"], gbp["arr"], gbp["customers"], gbp["arpa"]) == ("200.00", "2400.00", 2, "100.00")
    assert gbp["movements"] == {
        "month": "2026-06",
        "new": "0.00",
        "expansion": "30.00",
        "contraction": "0.00",
        "churn": "0.00",
        "reactivation": "0.00",
        "net": "30.00",
        "customers_start": 2,
        "customers_new": 0,
        "customers_reactivated": 0,
        "customers_churned": 0,
    }
    assert (gbp["customer_churn_rate"], gbp["customer_churn_rate_6m"], gbp["ltv"]) == ("0.0", "0.0", None)
    assert gbp["cohorts"] == [
        {
            "cohort": "2026-03",
            "customers": 1,
            "mrr": "70.00",
            "retention": [{"nrr": "100.0", "grr": "100.0"}] * 3 + [{"nrr": "142.9", "grr": "100.0"}],  # 100 / 70
        },
        {"cohort": "2026-05", "customers": 1, "mrr": "100.00", "retention": [{"nrr": "100.0", "grr": "100.0"}] * 2},
    ]
    assert [gbp[k] for k in ("invoiced", "collected", "refunded", "outstanding", "written_off")] == ["0.00"] * 5
    assert (gbp["failed_payment_rate"], gbp["recovery_rate"]) == (None, None)


def test_figures_as_of_earlier_days(world):
    data = revenue_data_load()
    may = revenue_figures(day=date(2026, 5, 31), data=data)["USD"]
    assert (may["mrr"], may["customers"], may["arpa"]) == ("450.00", 3, "150.00")  # A 100, B 250, C 100
    assert may["movements"]["net"] == "0.00"
    assert may["movements"]["customers_start"] == 3
    # usage: last closed month is April (20.00); Feb 11.00, Mar 30.00, Apr 20.00
    assert may["usage_last_period"] == {"month": "2026-04", "amount": "20.00"}
    assert may["usage_avg_3m"] == "20.33"
    # nothing paid in May; June's payments are not there yet; the credit note of 1 May is
    assert (may["collected"], may["refunded"], may["written_off"]) == ("0.00", "0.00", "0.00")
    assert may["invoiced"] == "300.00"  # inv2; the voided one left out
    assert may["outstanding"] == "480.00"  # inv2 300 (paid 4 June) + inv3 130 - 30 + inv6 80 (written off in June)
    assert may["aging"]["90+"] == "80.00"  # inv6, 92 days past due, still a receivable
    # the payment made on 30 May failed on 1 June: no attempt settled in May
    assert (may["payments_settled"], may["failed_payment_rate"]) == (0, None)
    may_gbp = revenue_figures(day=date(2026, 5, 31), data=data)["GBP"]
    assert (may_gbp["mrr"], may_gbp["movements"]["new"], may_gbp["customers"]) == ("170.00", "100.00", 2)
    # J's coupon covers bills up to 10 June 00:00: the 9th is the last day with it
    assert revenue_figures(day=date(2026, 6, 9), data=data)["GBP"]["mrr"] == "170.00"
    assert revenue_figures(day=date(2026, 6, 10), data=data)["GBP"]["mrr"] == "200.00"
    march = revenue_figures(day=date(2026, 3, 20), data=data)["USD"]
    assert march["mrr"] == "450.00"  # A 100, B 250, C 100; D ended on the 15th
    assert march["movements"] == {
        "month": "2026-03",
        "new": "100.00",
        "expansion": "0.00",
        "contraction": "0.00",
        "churn": "30.00",
        "reactivation": "0.00",
        "net": "70.00",
        "customers_start": 3,
        "customers_new": 1,
        "customers_reactivated": 0,
        "customers_churned": 1,
    }
    assert march["customer_churn_rate"] == "33.3"
    assert "EUR" not in revenue_figures(day=date(2026, 3, 20), data=data)  # G starts in April
    assert revenue_figures(day=date(2026, 3, 20), data=data)["GBP"]["mrr"] == "70.00"  # J from the 10th, 30 off


def test_snapshot_take_writes_one_row_per_currency_and_rewrites(world):
    assert revenue_snapshot_take(day=date(2026, 6, 15)) == 3
    assert revenue_snapshot_take(day=date(2026, 6, 15)) == 3
    rows = RevenueSnapshot.objects.filter(day=date(2026, 6, 15)).order_by("currency")
    assert [(r.currency, r.figures["mrr"]) for r in rows] == [("EUR", "50.00"), ("GBP", "200.00"), ("USD", "530.00")]


@pytest.mark.django_db
def test_page_shows_the_snapshot_in_currency_format(world, client_a, staff):
    staff("viewer")
    for day in (date(2026, 5, 31), date(2026, 6, 15)):
        revenue_snapshot_take(day=day)
    response = client_a.get("/staff/analytics/?as_of=2026-06-15&currency=USD")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<strong data-figure="mrr">$530.00</strong>' in html
    assert '<strong data-figure="arr">$6,360.00</strong>' in html
    assert '<strong data-figure="ltv">$1,590.00</strong>' in html
    assert '<strong data-figure="collected">$350.00</strong>' in html
    assert '<strong data-figure="refunded">$50.00</strong>' in html
    assert '<strong data-figure="written_off">$80.00</strong>' in html
    assert "a one-off discount (a coupon for one period) does not" in html
    assert "LTV = ARPA ÷ average monthly customer churn rate" in html
    assert "269.2 / 100.0 %" in html
    assert [p.month for p in response.context["report"].trend] == ["2026-05", "2026-06"]
    eur = client_a.get("/staff/analytics/?as_of=2026-06-15&currency=EUR").content.decode()
    assert '<strong data-figure="mrr">€50.00</strong>' in eur
    # the latest day by default
    assert client_a.get("/staff/analytics/").context["report"].day == date(2026, 6, 15)


@pytest.mark.django_db
def test_page_refuses_a_malformed_day_and_says_when_there_is_no_snapshot(in_a, client_a, staff):
    staff("viewer")
    response = client_a.get("/staff/analytics/?as_of=2026-13-45")
    assert response.status_code == 400
    assert "is not a date" in response.content.decode()
    response = client_a.get("/staff/analytics/")
    assert response.status_code == 200
    assert "No snapshot yet" in response.content.decode()


@pytest.mark.django_db
def test_backfill_command_writes_each_day_and_refuses_a_bad_range(world, tenant_a):
    from django.core.management import CommandError, call_command

    call_command("analytics_backfill", "--tenant", tenant_a.slug, "--from", "2026-06-13", "--to", "2026-06-15")
    days = RevenueSnapshot.objects.values_list("day", "currency").order_by("day", "currency")
    assert list(days) == [(date(2026, 6, d), c) for d in (13, 14, 15) for c in ("EUR", "GBP", "USD")]
    assert (
        RevenueSnapshot.objects.get(day=date(2026, 6, 13), currency="USD").figures["mrr"] == "530.00"
    )  # C ends the 12th
    for bad in (["--from", "2026-06-16", "--to", "2026-06-15"], ["--from", "16 June"]):
        with pytest.raises(CommandError):
            call_command("analytics_backfill", "--tenant", tenant_a.slug, *bad)
    assert RevenueSnapshot.objects.count() == 9


def test_beat_keeps_today_and_yesterday_in_every_tenant(world, settings):
    import time_machine

    from adminpanel.tasks import analytics_snapshot

    entry = settings.CELERY_BEAT_SCHEDULE["adminpanel-analytics-snapshot"]
    assert entry == {"task": "adminpanel.analytics_snapshot", "schedule": 3600.0}
    with time_machine.travel(t(2026, 6, 16, 9, 30), tick=False):
        assert analytics_snapshot() == {"rows": 6}
    rows = RevenueSnapshot.objects.filter(currency="USD").order_by("day")
    assert [(r.day, r.figures["mrr"]) for r in rows] == [(date(2026, 6, 15), "530.00"), (date(2026, 6, 16), "530.00")]


def test_the_page_reads_snapshots_in_one_query_whatever_the_customers(world, django_assert_num_queries):
    from adminpanel.analytics_report import revenue_report_get

    for day in (date(2026, 3, 31), date(2026, 5, 31), date(2026, 6, 15)):
        revenue_snapshot_take(day=day)
    # one query: the day and the month ends before it (TENANT_LIMIT_SET_CALLS: the search_path is
    # already set for this tenant on this connection)
    with django_assert_num_queries(1):
        report = revenue_report_get(day=date(2026, 6, 15), currency="USD")
    assert [(p.month, p.figures["mrr"]) for p in report.trend] == [
        ("2026-03", "450.00"),
        ("2026-05", "450.00"),
        ("2026-06", "530.00"),
    ]
    with django_assert_num_queries(2):  # no day: the latest day first
        report = revenue_report_get(day=None, currency="JPY")
    assert (report.day, report.currency, report.currencies) == (date(2026, 6, 15), "EUR", ["EUR", "GBP", "USD"])
