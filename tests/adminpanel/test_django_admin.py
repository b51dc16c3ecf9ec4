"""The Django admin fit for finance (issue 14 item 2): every link of the index answers 200 (and the
first object of every list), amounts in their currency, the issued parties as addresses, times
with their zone, dj-stripe's mirrors left out of the index."""

from __future__ import annotations

import re

import pytest
import time_machine

from invoicing.models import Invoice
from tests.portal.scenario import NOW, seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(in_a):
    seeded = seed()
    with time_machine.travel(NOW, tick=False):
        yield seeded


def links(html: str) -> list[str]:
    return sorted(set(re.findall(r'href="(/admin/[^"#?]*)"', html)))


def test_every_link_of_the_index_answers(acme, client_a, staff):
    staff("owner")
    index = client_a.get("/admin/").content.decode()
    pages = [url for url in links(index) if url != "/admin/logout/"]
    assert "/admin/invoicing/invoice/" in pages and "/admin/payments/payment/" in pages
    assert not [url for url in pages if url.startswith("/admin/djstripe/")]
    dead = []
    for url in pages:
        response = client_a.get(url, follow=True)  # a singleton's list redirects to its object
        if response.status_code != 200:
            dead.append((url, response.status_code))
            continue
        if url.endswith("/") and url.count("/") == 4:  # a changelist: open its first object too
            body = response.content.decode()
            first = next((u for u in links(body) if re.fullmatch(re.escape(url) + r"\d+/change/", u)), None)
            if first and (status := client_a.get(first, follow=True).status_code) != 200:
                dead.append((first, status))
    assert dead == []
    assert client_a.get("/admin/djstripe/").status_code == 200  # still there for owners, off the index


def test_invoice_amounts_addresses_and_times_as_finance_reads_them(acme, client_a, staff):
    staff("finance")
    invoice = Invoice.objects.get(organization=acme["organization"])
    listing = client_a.get("/admin/invoicing/invoice/").content.decode()
    assert f'<td class="field-total_display">€{invoice.total:.2f}</td>' in listing
    assert f"{invoice.total:.4f}" not in listing
    detail = client_a.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").content.decode()
    assert f'<div class="readonly">€{invoice.total:.2f}</div>' in detail
    assert "Seller GmbH<br>" in detail
    assert f"{invoice.customer['name']}<br>" in detail and '"external_id"' not in detail
    issued = invoice.issued_at.strftime("%H:%M")
    assert f"{issued} UTC" in detail
