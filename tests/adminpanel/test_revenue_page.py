"""The staff revenue recognition page (issue 14, item 4): the waterfall's figures and the month
close, role-checked, refusals writing nothing.

Acme on Flat (100.00 EUR a month in advance, anniversary billing) from April 20th 2027: its first
invoice covers April 20th to May 20th (30 days), recognized by month: 11 days' share in April
(36.666... toward zero: 36.66), the remainder 63.34 deferred at April's end and earned in May."""

import re
from datetime import date

import pytest
import time_machine
from auditlog.models import LogEntry

from invoicing.models import RevenueMonthClose
from invoicing.services.billing_run import billing_run
from tests.factories import OrganizationFactory, SubscriptionFactory
from tests.helpers import utc
from tests.invoicing.test_unused_time_credit import plans  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("plans")]
PAGE, CLOSE = "/staff/revenue/", "/staff/revenue/close/"


@pytest.fixture
def billed():
    org = OrganizationFactory(external_id="acme", currency="EUR", country="DE", name="Acme GmbH")
    SubscriptionFactory(organization=org, plan="flat", at=utc(2027, 4, 20), billing_mode="anniversary")
    billing_run(at=utc(2027, 4, 20))


def cells(body: str, attr: str, key: str) -> list[str]:
    row = re.search(rf'<tr {attr}="{key}">(.*?)</tr>', body, re.S).group(1)
    return re.findall(r"<td>(.*?)</td>", row)


def test_the_waterfall_shows_billed_recognized_deferred_and_unbilled(billed, client_a, staff):
    staff("viewer")
    body = client_a.get(PAGE, {"currency": "EUR", "from": "2027-03"}).content.decode()
    assert cells(body, "data-month", "2027-03") == ["€0.00", "€0.00", "€0.00", "€0.00", "open"]
    assert cells(body, "data-month", "2027-04") == ["€100.00", "€36.66", "€63.34", "€0.00", "open"]
    assert cells(body, "data-month", "2027-05") == ["€0.00", "€63.34", "€0.00", "€0.00", "open"]
    row = cells(body, "data-booked", "2027-04")
    assert (row[0], row[2], row[3], row[-2], row[-1]) == ("€0.00", "€36.66", "€63.34", "€0.00", "€100.00")


def test_a_window_holds_what_was_billed_before_it_and_earned_after_it(billed, client_a, staff):
    """The waterfall reads only the rows its window can hold: April's invoice still counts in a
    window that starts in May (earned then) and in one that ends in April (deferred past it)."""
    staff("viewer")
    body = client_a.get(PAGE, {"currency": "EUR", "from": "2027-05"}).content.decode()
    assert cells(body, "data-month", "2027-05") == ["€0.00", "€63.34", "€0.00", "€0.00", "open"]
    assert 'data-booked="2027-04"' not in body and "Nothing billed in these months." in body
    body = client_a.get(PAGE, {"currency": "EUR", "from": "2026-05"}).content.decode()
    assert cells(body, "data-month", "2027-04") == ["€100.00", "€36.66", "€63.34", "€0.00", "open"]
    row = cells(body, "data-booked", "2027-04")
    assert (row[0], row[-3], row[-2], row[-1]) == ("€0.00", "€36.66", "€63.34", "€100.00")


def test_a_bad_month_or_currency_is_a_400(billed, client_a, staff):
    staff("viewer")
    assert client_a.get(PAGE, {"from": "April"}).status_code == 400
    assert client_a.get(PAGE, {"currency": "USD"}).status_code == 400


def test_finance_closes_a_month_and_it_is_audited(billed, client_a, staff):
    with time_machine.travel(utc(2027, 5, 2), tick=False):  # the session is signed in at that time
        user = staff("finance")
        response = client_a.post(CLOSE, {"month": "2027-04"})
    assert (response.status_code, response["Location"]) == (302, PAGE)
    [closed] = RevenueMonthClose.objects.all()
    assert (closed.month, closed.closed_by) == (date(2027, 4, 1), user)
    assert LogEntry.objects.filter(changes__event=[None, "revenue.month_closed"]).count() == 1


@pytest.mark.parametrize(
    ("role", "month", "status"),
    [("viewer", "2027-04", 403), ("support", "2027-04", 403), ("finance", "2027-4", 400), ("finance", "2027-05", 409)],
)
def test_refused_closes_write_nothing(billed, client_a, staff, role, month, status):
    with time_machine.travel(utc(2027, 5, 2), tick=False):
        staff(role)
        before = LogEntry.objects.count()
        assert client_a.post(CLOSE, {"month": month}).status_code == status
        assert (RevenueMonthClose.objects.count(), LogEntry.objects.count()) == (0, before)
