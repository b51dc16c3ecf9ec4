"""The Django admin fit for finance (issue 14 item 2), walked whole: every registered model's
changelist and the change page of its first row answer 200 for a superuser who passed the second
factor, and none shows a raw stored amount (a Decimal column printed with its 4 or 12 stored
decimals) where the currency's format belongs. The data: April's invoice collected by card, part
of it refunded (a credit note, a credit entry and its use), a grant, a coupon redeemed, a one-off
charge."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse

from billing.services.coupon import coupon_create, coupon_redeem
from billing.services.credit import credit_grant
from core.money import Money
from invoicing.models import Invoice
from invoicing.services.one_off import invoice_one_off_create
from payments.models import Payment
from payments.services.refunds import RefundInput, payment_refund, refund_lines
from tests.invoicing.conftest import storage, world  # noqa: F401
from tests.invoicing.test_invoice_api import april_open
from tests.payments.conftest import CARD_OK, collect_all, connected, fake_stripe, localstripe_url, payer_with  # noqa: F401

pytestmark = pytest.mark.django_db
# A stored decimal as the database holds it: 4 decimals (invoice and payment amounts, tax rates),
# 10 (credit entries) or 12 (unit prices, quantities). A formatted amount has the currency's 0-3.
RAW_AMOUNT = re.compile(r"(?<![\d.])-?\d+\.\d{4,}(?![\d])")
# dj-stripe's mirrors are off the index (owners reach them by URL) and read-only; they hold
# Stripe's own figures in minor units, not ours.
SKIPPED_APPS = {"djstripe"}
# The audit log's own pages print each change as it was recorded (the stored values, by design).
RAW_ALLOWED = ("/admin/auditlog/",)


@pytest.fixture
def books(world, connected):  # noqa: F811
    organization = world[0]
    payer_with(organization, connected, card=CARD_OK)
    invoice = april_open(world)
    collect_all()
    payment = Payment.objects.get()
    payment_refund(
        actor=None,
        payment_id=payment.pk,
        refund=RefundInput(reason="Outage", lines=tuple(refund_lines(invoice, Decimal("10.00")))),
    )
    credit_grant(actor=None, organization=organization, amount=Decimal("12.5"), currency="EUR", kind="promotional")
    coupon = coupon_create(
        actor=None,
        code="TEN",
        name="Ten",
        discount_type="fixed",
        amount_off=Decimal("10"),
        currency="EUR",
        duration="once",
    )
    coupon_redeem(actor=None, coupon=coupon, organization=organization)
    invoice_one_off_create(
        actor=None, organization=organization, description="Setup", amount=Money(Decimal("99.00"), "EUR")
    )
    return organization


def pages() -> list[tuple[str, type]]:
    return [
        (f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist", model)
        for model in admin.site._registry
        if model._meta.app_label not in SKIPPED_APPS
    ]


def test_every_changelist_and_change_page_answers_without_raw_amounts(books, client_a, staff):
    staff("owner", is_superuser=True)
    dead, raw = [], []
    for name, model in pages():
        urls = [reverse(name)]
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse(name.replace("_changelist", "_change"), args=[first.pk]))
        for url in urls:
            response = client_a.get(url, follow=True)  # a singleton's list redirects to its object
            if response.status_code != 200:
                dead.append((url, response.status_code))
                continue
            body = response.content.decode()
            # the form inputs of an editable amount hold the stored value: only what is shown counts
            shown = re.sub(r"<(input|textarea|option)[^>]*>", "", body)
            if not url.startswith(RAW_ALLOWED):
                raw += [(url, match.group(0)) for match in RAW_AMOUNT.finditer(shown)]
    assert dead == []
    assert raw == [], "\n".join(map(str, raw))


def test_lines_and_credit_entries_as_finance_reads_them(books, client_a, staff):
    staff("finance")
    one_off = Invoice.objects.get(lines__kind="one_off")
    html = client_a.get(reverse("admin:invoicing_invoice_change", args=[one_off.pk])).content.decode()
    body = re.sub(r">\s+<", "><", html)  # the inline's cells are indented over lines
    for cell in (
        '<td class="field-quantity_display"><p>1</p></td>',
        '<td class="field-unit_amount_display"><p>€99.00</p></td>',
        '<td class="field-net_amount_display"><p>€99.00</p></td>',
        '<td class="field-tax_amount_display"><p>€18.81</p></td>',
        '<td class="field-tax_rate_display"><p>19 %</p></td>',
    ):
        assert cell in body
    listing = client_a.get(reverse("admin:billing_creditentry_changelist")).content.decode()
    assert '<td class="field-amount_display">€12.50</td>' in listing
    assert '<td class="field-amount_display">-€10.00</td>' in listing
