"""The second approver of a staff refund above the currency's threshold, on the invoicing tests'
world and the fake Stripe gateway (as test_money_actions): requested by one staff user, refunded
only when another approves, with the approver as the refund's audit actor."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from adminpanel.models import ApprovalThreshold, PendingApproval
from invoicing.models import CreditNote
from payments.models import Payment, Refund
from payments.services.refunds import RefundInput, payment_refund
from tests.invoicing.conftest import storage, world  # noqa: F401
from tests.invoicing.test_invoice_api import april_open
from tests.payments.conftest import CARD_OK, collect_all, connected, fake_stripe, localstripe_url, payer_with  # noqa: F401

pytestmark = pytest.mark.django_db
PAGE = "/staff/organizations/acme/"


def fingerprint(html: str) -> str:
    return re.search(r'name="confirm" value="([0-9a-f]{64})"', html).group(1)


def effect(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr><th scope="row">(.*?)</th><td data-effect>(.*?)</td></tr>', html)


def test_a_refund_above_the_threshold_waits_for_a_second_approver(world, connected, client_a, staff):  # noqa: F811
    ApprovalThreshold.objects.create(currency="EUR", amount=Decimal("20"))
    payer_with(world[0], connected, card=CARD_OK)
    invoice = april_open(world)
    collect_all()
    payment = Payment.objects.get()
    requester = staff("finance")
    form = {"payment": payment.pk, "reason": "Cancelled in the first week"}
    body = client_a.post(PAGE + "refunds/", form).content.decode()
    assert effect(body)[-2:] == [
        ("Second approver", "required above €20.00: this creates a pending approval"),
        ("Already pending for this organization", "0"),
    ]
    assert client_a.post(PAGE + "refunds/", {**form, "confirm": fingerprint(body)}).status_code == 302
    approval = PendingApproval.objects.get()
    assert (approval.kind, approval.amount, approval.requested_by, approval.params) == (
        "refund",
        Decimal("35.7000"),
        requester,
        {"payment": payment.pk, "reason": "Cancelled in the first week"},
    )
    assert not Refund.objects.exists() and not CreditNote.objects.exists()
    client_a.logout()
    approver = staff("admin")
    url = f"/staff/compliance/approvals/{approval.pk}/approve/"
    body = client_a.post(url).content.decode()
    assert ("Payment", f"{invoice.number} attempt 1") in effect(body)
    assert client_a.post(url, {"confirm": fingerprint(body)}).status_code == 302
    refund = Refund.objects.get()
    assert (refund.amount, refund.status) == (Decimal("35.7000"), "succeeded")
    entries = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Refund), object_id=refund.pk)
    [event] = [e for e in entries if e.changes.get("event") == [None, "refund.created"]]
    assert event.actor == approver
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by) == ("approved", approver)


def test_an_approval_the_service_refuses_stays_pending(world, connected, client_a, staff):  # noqa: F811
    ApprovalThreshold.objects.create(currency="EUR", amount=Decimal("20"))
    payer_with(world[0], connected, card=CARD_OK)
    april_open(world)
    collect_all()
    payment = Payment.objects.get()
    staff("finance")
    form = {"payment": payment.pk, "reason": "Cancelled"}
    body = client_a.post(PAGE + "refunds/", form).content.decode()
    client_a.post(PAGE + "refunds/", {**form, "confirm": fingerprint(body)})
    approval = PendingApproval.objects.get()
    payment_refund(actor=None, payment_id=payment.pk, refund=RefundInput(reason="Refunded by the API meanwhile"))
    client_a.logout()
    staff("admin")
    url = f"/staff/compliance/approvals/{approval.pk}/approve/"
    body = client_a.post(url).content.decode()
    response = client_a.post(url, {"confirm": fingerprint(body)})
    assert response.status_code == 400 and "Nothing was done." in response.content.decode()
    assert Refund.objects.count() == 1
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by, approval.decided_at) == ("pending", None, None)
