"""Customer 360's coupon and refund actions and the invoice PDF link, on the invoicing tests'
world (Acme on Basic, 30.00 EUR + 19 % VAT, April's invoice) and the fake Stripe gateway."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile

from billing.models import CouponRedemption
from billing.services.coupon import coupon_create
from invoicing.models import CreditNote
from payments.models import Payment, Refund
from tests.helpers import utc
from tests.invoicing.conftest import storage, world  # noqa: F401
from tests.invoicing.test_invoice_api import april_open
from tests.payments.conftest import CARD_OK, collect_all, connected, fake_stripe, localstripe_url, payer_with  # noqa: F401

pytestmark = pytest.mark.django_db
PAGE = "/staff/organizations/acme/"


def fingerprint(html: str) -> str:
    return re.search(r'name="confirm" value="([0-9a-f]{64})"', html).group(1)


def effect(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr><th scope="row">(.*?)</th><td data-effect>(.*?)</td></tr>', html)


def test_apply_a_coupon(world, client_a, staff):  # noqa: F811
    coupon_create(
        actor=None,
        code="SPRING",
        name="Spring",
        discount_type="percentage",
        percent_off=Decimal(20),
        duration="repeating",
        duration_periods=2,
    )
    with time_machine.travel(utc(2027, 4, 10), tick=False):
        user = staff("finance")
        body = client_a.post(PAGE + "coupons/", {"coupon": "SPRING"}).content.decode()
        assert effect(body) == [
            ("Coupon", "Spring (SPRING)"),
            ("Discount", "20 % off every line of the invoice"),
            ("Subscription", str(world[1])),
            ("Covers", "from 1 Apr 2027 00:00 UTC until 1 Jun 2027 00:00 UTC"),
        ]
        assert not CouponRedemption.objects.exists()
        response = client_a.post(PAGE + "coupons/", {"coupon": "SPRING", "confirm": fingerprint(body)})
        assert response.status_code == 302
        redemption = CouponRedemption.objects.get()
        assert (redemption.organization, redemption.redeemed_by, redemption.covers_until) == (
            world[0],
            user,
            utc(2027, 6, 1),
        )
        assert (
            LogEntry.objects.get(
                content_type=ContentType.objects.get_for_model(CouponRedemption), object_id=redemption.pk
            ).actor
            == user
        )
        # a second time is refused by the service, nothing written
        response = client_a.post(PAGE + "coupons/", {"coupon": "SPRING"})
        assert response.status_code == 400
        assert "has already redeemed coupon" in response.content.decode()
        assert CouponRedemption.objects.count() == 1


def test_full_refund_previews_then_refunds(world, connected, client_a, staff):  # noqa: F811
    payer_with(world[0], connected, card=CARD_OK)
    invoice = april_open(world)
    collect_all()
    payment = Payment.objects.get()
    user = staff("finance")
    form = {"payment": payment.pk, "reason": "Cancelled in the first week"}
    body = client_a.post(PAGE + "refunds/", form).content.decode()
    assert effect(body) == [
        ("Payment", f"{invoice.number} attempt 1: €35.70"),
        ("Already refunded", "€0.00"),
        ("Refund", "in full"),
        ("Credit note", "net €30.00, tax €5.70"),
        ("Credit note total", "€35.70"),
        ("Paid back to the customer", "€35.70"),
        ("Left to refund after", "€0.00"),
    ]
    assert not Refund.objects.exists() and not CreditNote.objects.exists()
    response = client_a.post(PAGE + "refunds/", {**form, "confirm": fingerprint(body)})
    assert response.status_code == 302
    refund = Refund.objects.get()
    assert (refund.amount, refund.status, refund.credit_note.reason) == (
        Decimal("35.7000"),
        "succeeded",
        "Cancelled in the first week",
    )
    entry = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Refund), object_id=refund.pk)
    [event] = [e for e in entry if e.changes.get("event") == [None, "refund.created"]]
    assert event.actor == user
    assert event.changes["amount"] == [None, "35.70"]
    # refunded in full: a second refund is refused before anything is shown
    response = client_a.post(PAGE + "refunds/", form)
    assert response.status_code == 400
    assert f"Payment {payment.pk} is refunded in full." in response.content.decode()
    assert Refund.objects.count() == 1


def test_refund_is_for_billing_writers_only(world, client_a, staff):  # noqa: F811
    staff("support")
    assert client_a.post(PAGE + "refunds/", {"payment": "1", "reason": "x"}).status_code == 403
    assert not Refund.objects.exists() and not CreditNote.objects.exists()


def test_invoice_pdf_link(world, storage, client_a, staff):  # noqa: F811
    invoice = april_open(world)
    staff("viewer")
    assert client_a.get(f"/staff/invoices/{invoice.pk}/pdf/").status_code == 404  # none stored yet
    invoice.pdf.save(f"{invoice.number}.pdf", ContentFile(b"%PDF-1.4 april"), save=True)
    response = client_a.get(f"/staff/invoices/{invoice.pk}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == b"%PDF-1.4 april"
    assert f'<a href="/staff/invoices/{invoice.pk}/pdf/">PDF' in client_a.get(PAGE).content.decode()
