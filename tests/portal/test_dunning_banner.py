"""The dunning banner on every portal page of an organization in dunning: its state, the amount
overdue (currency formatted), what is blocked and from when, and pay-now to the oldest overdue
invoice (for members who may pay); none for an organization in good standing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from billing.models import Membership
from dunning.services.run import dunning_run
from invoicing.models import Invoice
from tests.portal.scenario import NOW, seed

pytestmark = pytest.mark.django_db
PAGES = ["", "billing/", "projection/", "payment-methods/", "plan/", "team/"]


@pytest.fixture
def acme(in_a, client_a):
    seeded = seed()
    with time_machine.travel(NOW, tick=False):
        client_a.force_login(seeded["user"])
        yield seeded


def overdue(seeded, days: int) -> Invoice:
    """Run dunning `days` after the invoice's due date (it has no method to charge: its case
    starts at the due date), then come back to NOW to look."""
    invoice = Invoice.objects.get(pk=seeded["invoice"].pk)
    at = invoice.due_at + timedelta(days=days, hours=1)
    with time_machine.travel(at, tick=False):
        dunning_run(at=at)
    return invoice


def banner(page: str) -> str:
    start = page.index('<section role="alert" class="message warning dunning-banner"')
    return page[start : page.index("</section>", start)]


def test_no_banner_in_good_standing(acme, client_a):
    for page in PAGES:
        response = client_a.get(f"/organizations/acme/{page}")
        assert response.status_code == 200 and "data-dunning-banner" not in response.content.decode()


def test_past_due_banner_on_every_page_says_what_comes_when(acme, client_a):
    invoice = overdue(acme, 2)
    assert invoice.amount_due == invoice.total > 0
    for page in PAGES:
        response = client_a.get(f"/organizations/acme/{page}")
        assert response.status_code == 200, page
        shown = banner(response.content.decode())
        assert 'data-dunning-banner="past_due"' in shown and "Your account is past due" in shown
        assert f"Overdue: <strong>€{invoice.amount_due:.2f}</strong>, the oldest on invoice {invoice.number}." in shown
        assert f'href="/organizations/acme/invoices/{invoice.pk}/pay/"' in shown
    assert "<li>Plan changes will be blocked from 25 Apr 2027, 00:05 unless paid.</li>" in shown  # Berlin time
    assert "<li>Usage access will be blocked from 29 Apr 2027, 00:05 unless paid.</li>" in shown


def test_suspended_banner_says_since_when_and_a_viewer_gets_no_pay_link(acme, client_a):
    invoice = overdue(acme, 15)  # one run took both stages, at 2027-04-29 23:05 UTC
    shown = banner(client_a.get("/organizations/acme/billing/").content.decode())
    assert 'data-dunning-banner="suspended"' in shown and "Your account is suspended" in shown
    assert "<li>Plan changes blocked since 30 Apr 2027, 01:05.</li>" in shown
    assert "<li>Usage access blocked since 30 Apr 2027, 01:05.</li>" in shown
    assert f'href="/organizations/acme/invoices/{invoice.pk}/pay/"' in shown
    Membership.objects.filter(user=acme["user"]).update(role="viewer")
    shown = banner(client_a.get("/organizations/acme/").content.decode())
    assert "data-dunning-pay" not in shown and "An owner, admin or billing member of Acme" in shown
