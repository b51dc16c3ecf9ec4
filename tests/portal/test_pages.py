"""The portal's pages on a seeded customer (tests/portal/scenario.py), time frozen at
2027-04-15 12:00 UTC (14:00 in Berlin, the organization's timezone)."""

from decimal import Decimal

import pytest
import time_machine

from invoicing.models import Invoice
from tests.factories import MembershipFactory, OrganizationFactory
from tests.portal.scenario import CALLS_SO_FAR, NOW, seed


@pytest.fixture
def acme(in_a, client_a):
    seeded = seed()
    with time_machine.travel(NOW, tick=False):
        client_a.force_login(seeded["user"])  # a session started now (it would have expired by 2027)
        yield seeded


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@pytest.mark.django_db
def test_dashboard_prices_spend_and_shows_days_groups_in_local_time(acme, client_a):
    page = text(client_a.get("/organizations/acme/"))
    # 10.00 EUR fee invoiced at the period start + 140 calls at 0.01, before tax
    assert CALLS_SO_FAR == 140
    assert '<p class="figure" data-spend>€11.40</p>' in page
    assert "€10.00 of it is already on issued invoices" in page
    assert '<span data-meter-amount="calls">€1.40</span>' in page
    assert "figures up to 15 Apr, 14:00:00" in page  # Berlin, not UTC
    assert "1 Apr 2027 \u2013 30 Apr 2027" in page
    # days are Berlin days: the 1st has 5 calls (the period starts 2027-03-31 22:00 UTC)
    assert '"labels": ["Thu 1 Apr", "Fri 2 Apr"' in page
    assert '"values": ["5", "10", "15", "5", "10", "15", "5", "10", "15", "5", "10", "15", "5", "10", "5"]' in page
    # group-by breakdown: the even-numbered calls of each day (the first, third, ...) and today's 5 are eu
    assert '<td>eu</td><td class="num">77</td>' in page and '<td>us</td><td class="num">63</td>' in page
    assert 'data-ws="/ws/usage/?organization=acme"' in page
    assert 'aria-current="page">Dashboard' in page


@pytest.mark.django_db
def test_the_live_dashboard_reads_the_hour_in_progress_from_its_rollup(acme, client_a):
    """At 11:30 the hour 11:00-12:00 is read from its rollup (the drainer writes it with the
    events), not by scanning that hour's raw events: the same figures, no raw read."""
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.selectors import dashboard_get

    with time_machine.travel(NOW - timedelta(minutes=30), tick=False):
        with CaptureQueriesContext(connection) as queries:
            dashboard = dashboard_get(organization=acme["organization"])
    (calls,) = dashboard.meters
    assert calls.value == CALLS_SO_FAR
    assert [str(v) for _, v in calls.days] == ["5", "10", "15"] * 4 + ["5", "10", "5"]
    assert [label for label, _ in calls.groups] == ["eu", "us"]
    assert dashboard.spend.total == Decimal("11.40")
    (usage,) = [q["sql"] for q in queries.captured_queries if "width_bucket" in q["sql"]]  # the page's own read
    assert "metering_event" not in usage


@pytest.mark.django_db
def test_period_switch_by_htmx_returns_the_panel_and_unknown_periods_are_404(acme, client_a):
    panel = text(client_a.get("/organizations/acme/?period=0", HTTP_HX_REQUEST="true"))
    assert panel.lstrip().startswith('<div id="usage-panel"') and "<nav" not in panel
    # the subscription started this period: there is no earlier one
    assert client_a.get("/organizations/acme/?period=1").status_code == 404
    assert client_a.get("/organizations/acme/?period=x").status_code == 404


@pytest.mark.django_db
def test_billing_history_lists_the_finalized_invoice_and_its_pdf(acme, client_a):
    invoice = acme["invoice"]
    page = text(client_a.get("/organizations/acme/billing/"))
    assert f"Invoice {invoice.number}" in page
    assert '<td class="num">€10.00</td>' in page  # no tax: the seller has no origin country
    assert f'href="/organizations/acme/invoices/{invoice.pk}/pdf/"' in page
    pdf = client_a.get(f"/organizations/acme/invoices/{invoice.pk}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF-")
    assert pdf["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'


@pytest.mark.django_db
def test_projection_prices_the_run_rate_with_a_band(acme, client_a):
    page = text(client_a.get("/organizations/acme/projection/"))
    # 140 calls in 14 days 14 hours of a 30-day period: 140 * 720 / 350 = 288 calls, 2.88 EUR
    assert '<p class="figure" data-projected-total>€12.88</p>' in page
    assert "Likely between" in page and "How this is calculated" in page
    assert "every actual total fell inside the range" in page
    # the upcoming-invoice preview beside it (invoicing.selectors.preview): May 1st in Berlin
    assert "Issued 1 May 2027, 00:00" in page


@pytest.mark.django_db
def test_another_organization_and_drafts_are_404_everywhere(acme, client_a):
    other = OrganizationFactory(external_id="other", name="Other Secret")
    MembershipFactory(organization=other)  # someone else's
    foreign = Invoice.objects.create(organization=other, currency="USD", status="open", number="X-1")
    draft = Invoice.objects.create(organization=acme["organization"], currency="EUR")
    for url in (
        "/organizations/other/",
        "/organizations/other/billing/",
        "/organizations/other/projection/",
        f"/organizations/other/invoices/{foreign.pk}/pdf/",
        f"/organizations/acme/invoices/{foreign.pk}/pdf/",
        f"/organizations/acme/invoices/{draft.pk}/pdf/",
    ):
        response = client_a.get(url)
        assert response.status_code == 404, url
        assert b"Other Secret" not in response.content
    assert b"X-1" not in client_a.get("/organizations/acme/billing/").content


@pytest.mark.django_db
def test_a_member_of_two_organizations_chooses_one(in_a, client_a):
    first = MembershipFactory(organization__name="Beta Co", organization__external_id="beta")
    MembershipFactory(user=first.user, organization__name="Alpha Co", organization__external_id="alpha")
    client_a.force_login(first.user)
    page = text(client_a.get("/"))
    assert page.index("Alpha Co") < page.index("Beta Co")
    dashboard = text(client_a.get("/organizations/beta/"))
    assert 'href="/">Switch organization' in dashboard


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "statements"),
    [
        # session, user, organizations, subscription + its snapshot (3), what invoices billed for
        # the period, the bill's inputs (billed usage, billed fees, redemptions), meters (bill,
        # page), the bill's usage, the meter's total + groups + hours (one statement), invoices
        ("/organizations/acme/", 16),
        # as above, plus the upcoming-invoice preview's own reads (its subscriptions, not their
        # states again: the page's state is passed in and shared with the composition); the three
        # projected bills are priced from one read of the usage and billing state
        # (billing.selectors.bill.bills_get)
        ("/organizations/acme/projection/", 22),
    ],
)
def test_pages_read_each_thing_once_and_set_the_search_path_once(acme, client_a, path, statements):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client_a.get(path)  # the session's first read after login
    with CaptureQueriesContext(connection) as queries:
        assert client_a.get(path).status_code == 200
    sql = [q["sql"] for q in queries.captured_queries]
    assert [s for s in sql if s.startswith("SET ")] == ['SET search_path = "t_alpha","public"']
    assert len(sql) - 1 == statements
