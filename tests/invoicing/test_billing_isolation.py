"""One subscription that cannot be billed does not stop the billing run (issue 9, item 6b): it
records its billing problem (audited, counted, shown in the admin), the others are billed, a
rerun creates nothing new, and once its data is fixed a run bills it and clears the problem.

Five customers on Basic (10.00 EUR a month + 0.01 per byte uploaded, a sum meter), subscribed on
April 1st 2027; each uploaded 100 bytes in April, written as a rollup. Customer c2's rollup says
-5 bytes (written directly: ingestion refuses such values, but data can be wrong), which the
pricing engine refuses."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry

from billing.models import Organization, PlanVersion, Subscription
from billing.services.plan import ChargeInput, VersionInput, plan_create
from billing.services.subscription import subscription_create
from invoicing.metrics import BILLING_FAILURES
from invoicing.models import Invoice, InvoicingSettings
from invoicing.services.billing_run import billing_run
from metering.models import Meter, Rollup
from metering.services.meter import meter_create
from tests.factories import UserFactory, totp_enable
from tests.helpers import staff_login

D = Decimal
APRIL, MAY = datetime(2027, 4, 1, tzinfo=UTC), datetime(2027, 5, 1, tzinfo=UTC)
PROBLEM = (
    "pricing_error: Charge 'Bytes' (meter 'bytes') cannot be priced for the usage from 2027-04-01T00:00:00+00:00 "
    "to 2027-05-01T00:00:00+00:00: quantity must not be negative (got -5). [negative_quantity]"
)


@pytest.fixture
def five(in_a):
    InvoicingSettings.objects.update_or_create(pk=1, defaults={"seller_name": "Seller GmbH"})
    meter_create(actor=None, code="bytes", name="Bytes", event_type="upload", aggregation="sum", value_property="bytes")
    plan_create(
        actor=None,
        code="basic",
        name="Basic",
        currency="EUR",
        interval="month",
        version=VersionInput(
            base_fee="10.00", charges=[ChargeInput(meter="bytes", price={"model": "per_unit", "unit_amount": "0.01"})]
        ),
    )
    meter = Meter.objects.get()
    subscriptions = {}
    with time_machine.travel(APRIL, tick=False):
        for n in range(5):
            org = Organization.objects.create(external_id=f"c{n}", name=f"Customer {n}", currency="EUR")
            subscriptions[org.external_id] = subscription_create(
                actor=None, organization=org, plan_version=PlanVersion.objects.get()
            )
            value = D(-5) if n == 2 else D(100)
            Rollup.objects.create(
                meter=meter,
                customer=org.external_id,
                hour=datetime(2027, 4, 10, tzinfo=UTC),
                event_count=1,
                value_sum=value,
                value_min=value,
                value_max=value,
            )
    assert billing_run(at=APRIL).invoices_created == 5  # April's fees in advance: no usage yet
    return subscriptions


def failures(stage: str) -> float:
    return BILLING_FAILURES.labels(stage=stage)._value.get()


def problem_entries(subscription) -> list:
    return list(
        LogEntry.objects.get_for_object(subscription)
        .filter(changes__event__1__startswith="subscription.billing_problem")
        .order_by("id")
        .values_list("changes__event__1", "changes__problem")
    )


def may_totals() -> dict[str, Decimal]:
    invoices = Invoice.objects.filter(bill_point=MAY).select_related("organization")
    return {invoice.organization.external_id: invoice.total for invoice in invoices}


@pytest.mark.django_db
def test_a_subscription_that_cannot_be_priced_is_isolated_and_billed_once_fixed(five):
    bad = five["c2"]
    before = failures("drafting")
    with time_machine.travel(datetime(2027, 5, 1, 0, 30, tzinfo=UTC), tick=False):
        # chunks of two: [c0, c1], [c2, c3], [c4]: the failing chunk is billed one by one and the
        # chunk after it is billed as usual
        result = billing_run(at=MAY, chunk_size=2)
    assert (result.invoices_created, result.problems, result.subscriptions) == (4, 1, 4)
    # 100 bytes at 0.01 and May's fee
    assert may_totals() == {"c0": D("11.00"), "c1": D("11.00"), "c3": D("11.00"), "c4": D("11.00")}
    bad.refresh_from_db()
    assert (bad.billed_through, bad.next_bill_at) == (APRIL, MAY)  # still due
    assert bad.billing_problem == f"drafting: {PROBLEM}"
    assert bad.billing_problem_at == datetime(2027, 5, 1, 0, 30, tzinfo=UTC)
    assert problem_entries(bad) == [("subscription.billing_problem", ["", f"drafting: {PROBLEM}"])]
    assert failures("drafting") == before + 1
    assert not Subscription.objects.exclude(pk=bad.pk).exclude(billing_problem="").exists()

    # the hourly rerun: nothing new, the same problem is not audited again (the metric counts tries)
    with time_machine.travel(datetime(2027, 5, 1, 1, 30, tzinfo=UTC), tick=False):
        again = billing_run(at=datetime(2027, 5, 1, 1, tzinfo=UTC))
    assert (again.invoices_created, again.problems) == (0, 1)
    assert Invoice.objects.count() == 9
    bad.refresh_from_db()
    assert bad.billing_problem_at == datetime(2027, 5, 1, 0, 30, tzinfo=UTC)
    assert len(problem_entries(bad)) == 1
    assert failures("drafting") == before + 2

    # the data fixed, the next run bills it and clears the problem
    Rollup.objects.filter(customer="c2").update(value_sum=D(50), value_min=D(50), value_max=D(50))
    fixed = billing_run(at=datetime(2027, 5, 1, 2, tzinfo=UTC))
    assert (fixed.invoices_created, fixed.problems) == (1, 0)
    assert may_totals()["c2"] == D("10.50")
    bad.refresh_from_db()
    assert (bad.billing_problem, bad.billing_problem_at, bad.billed_through) == ("", None, MAY)
    assert problem_entries(bad)[-1] == ("subscription.billing_problem_cleared", [f"drafting: {PROBLEM}", ""])


@pytest.mark.django_db
def test_a_draft_that_cannot_be_finalized_is_isolated(five):
    """The bad value arrives after the drafts were made: re-made at the end of the grace period,
    c2's draft fails; the other drafts are finalized, c2's stays a draft with its problem."""
    Rollup.objects.filter(customer="c2").update(value_sum=D(100), value_min=D(100), value_max=D(100))
    assert billing_run(at=MAY).invoices_created == 5
    Rollup.objects.filter(customer="c2").update(value_sum=D(-5), value_min=D(-5), value_max=D(-5))
    before = failures("finalizing")
    with time_machine.travel(datetime(2027, 5, 2, 0, 5, tzinfo=UTC), tick=False):
        result = billing_run(at=datetime(2027, 5, 2, tzinfo=UTC), chunk_size=2)
    assert (result.finalized, result.problems) == (4, 1)
    statuses = dict(Invoice.objects.filter(bill_point=MAY).values_list("organization__external_id", "status"))
    assert statuses == {"c0": "open", "c1": "open", "c2": "draft", "c3": "open", "c4": "open"}
    # numbers stay gap-free: 5 in April, 4 now
    assert sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))[-1] == "INV-000009"
    bad = five["c2"]
    bad.refresh_from_db()
    assert bad.billing_problem == f"finalizing: {PROBLEM}"
    assert failures("finalizing") == before + 1

    Rollup.objects.filter(customer="c2").update(value_sum=D(200), value_min=D(200), value_max=D(200))
    fixed = billing_run(at=datetime(2027, 5, 2, 1, tzinfo=UTC))
    assert (fixed.finalized, fixed.problems) == (1, 0)
    draft = Invoice.objects.get(bill_point=MAY, organization__external_id="c2")
    assert (draft.status, draft.number, draft.total) == ("open", "INV-000010", D("12.00"))
    bad.refresh_from_db()
    assert bad.billing_problem == ""


@pytest.mark.django_db
def test_a_dry_run_counts_the_problem_and_writes_nothing(five):
    entries = LogEntry.objects.count()
    result = billing_run(at=MAY, dry_run=True)
    assert (len(result.drafts), result.problems) == (4, 1)
    assert Invoice.objects.count() == 5 and LogEntry.objects.count() == entries
    assert not Subscription.objects.exclude(billing_problem="").exists()


@pytest.mark.django_db
def test_the_admin_lists_subscriptions_with_a_billing_problem(five, client_a):
    billing_run(at=MAY)
    user = UserFactory(staff_role="support")
    staff_login(client_a, email=user.email, totp_secret=totp_enable(user))
    page = client_a.get("/admin/billing/subscription/?billing_problem=yes")
    assert page.status_code == 200
    assert [s.organization.external_id for s in page.context["cl"].result_list] == ["c2"]
    detail = client_a.get(f"/admin/billing/subscription/{five['c2'].pk}/change/").content.decode()
    assert "quantity must not be negative (got -5)." in detail
    healthy = client_a.get("/admin/billing/subscription/?billing_problem=no").context["cl"].result_list
    assert sorted(s.organization.external_id for s in healthy) == ["c0", "c1", "c3", "c4"]
