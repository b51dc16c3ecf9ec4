"""The payments API against localstripe: exact list and detail bodies with attempts, filters,
members' scoping, paying an invoice now (once, whatever the number of calls; 409 when there is
nothing to pay), refunds through the API with their error codes, and the payment methods the
gateway holds. Refused requests write nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from auditlog.models import LogEntry

from accounts.services.api_key import apikey_create
from invoicing.models import CreditNote, Invoice
from payments.models import Payment, Refund
from payments.services.methods import collection_method_set
from tests.factories import MembershipFactory, OrganizationFactory
from tests.helpers import bearer, jwt_login
from tests.invoicing.test_invoice_api import april_open
from tests.payments.conftest import CARD_DECLINED, CARD_OK, collect_all, payer_with

D = Decimal


@pytest.fixture
def api(client_a, in_a):
    """`api.get(path)`, `api.post(path, body)` with a read/write API key."""
    secret = apikey_create(name="erp", scopes=["read", "write"], actor=None).secret

    class Api:
        def get(self, path):
            return client_a.get(path, **bearer(secret))

        def post(self, path, body=None):
            return client_a.post(path, body or {}, content_type="application/json", **bearer(secret))

    return Api()


@pytest.fixture
def paid(world, connected):
    payer_with(world[0], connected, card=CARD_OK)
    invoice = april_open(world)
    collect_all()
    return invoice, Payment.objects.get()


def test_list_and_detail_bodies(api, paid):
    invoice, payment = paid
    response = api.get("/api/v1/payments")
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None and len(body["results"]) == 1
    [item] = body["results"]
    assert item == {
        "id": payment.pk,
        "invoice": invoice.pk,
        "invoice_number": invoice.number,
        "customer": "acme",
        "number": 1,
        "status": "succeeded",
        "currency": "EUR",
        "amount": "35.70",
        "amount_refunded": "0.00",
        "gateway": "stripe",
        "gateway_payment_id": payment.gateway_payment_id,
        "method_type": "card",
        "failure_code": None,
        "failure_message": None,
        "created_at": payment.created_at.isoformat(),
    }
    detail = api.get(f"/api/v1/payments/{payment.pk}").json()
    assert [(a["step"], a["outcome"], a["status_after"]) for a in detail["attempts"]] == [
        ("create", "done", "created"),
        ("confirm", "done", "succeeded"),
    ]
    assert detail["refunds"] == [] and {k: detail[k] for k in item} == item


def test_filters_and_bad_parameters(api, paid):
    invoice, payment = paid
    ids = lambda query: [p["id"] for p in api.get(f"/api/v1/payments?{query}").json()["results"]]  # noqa: E731
    assert ids("organization=acme") == [payment.pk]
    assert ids(f"invoice={invoice.pk}") == [payment.pk]
    assert ids(f"invoice={invoice.pk + 1000}") == []
    assert ids("status=succeeded") == [payment.pk]
    assert ids("status=failed") == []
    for query, status, code in [
        ("status=paid", 400, "invalid_parameter"),
        ("invoice=x", 400, "invalid_parameter"),
        ("organization=nobody", 404, "unknown_organization"),
    ]:
        response = api.get(f"/api/v1/payments?{query}")
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert api.get("/api/v1/payments/999999").status_code == 404
    assert api.get("/api/v1/payments/abc").json()["error"]["code"] == "not_found"


def test_members_see_their_organizations_payments_only(client_a, paid):
    _, payment = paid
    member = MembershipFactory(organization=Invoice.objects.get().organization).user
    outsider = MembershipFactory(organization=OrganizationFactory(external_id="globex")).user
    mine = jwt_login(client_a, email=member.email)
    theirs = jwt_login(client_a, email=outsider.email)
    get = lambda path, token: client_a.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")  # noqa: E731
    assert [p["id"] for p in get("/api/v1/payments", mine).json()["results"]] == [payment.pk]
    assert get("/api/v1/payments", theirs).json()["results"] == []
    assert get(f"/api/v1/payments/{payment.pk}", theirs).status_code == 404
    refused = client_a.post(f"/api/v1/invoices/{payment.invoice_id}/pay", HTTP_AUTHORIZATION=f"Bearer {mine}")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "permission_denied")


def test_pay_now_charges_once_and_refuses_a_paid_invoice(api, world, connected):
    payer_with(world[0], connected, card=CARD_OK)
    collection_method_set(actor=None, organization=world[0], method="manual")
    invoice = april_open(world)
    assert not Payment.objects.exists()
    response = api.post(f"/api/v1/invoices/{invoice.pk}/pay")
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["amount"], body["number"]) == ("succeeded", "35.70", 1)
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    assert connected.confirms() == 1
    entries = LogEntry.objects.count()
    again = api.post(f"/api/v1/invoices/{invoice.pk}/pay")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invoice_not_open")
    assert connected.confirms() == 1 and Payment.objects.count() == 1 and LogEntry.objects.count() == entries
    [created] = LogEntry.objects.filter(changes__event__1="payment.created").values_list("actor_email", flat=True)
    assert created is None  # an API key: no user, its origin in additional_data


def test_pay_now_after_a_decline_is_a_new_payment(api, world, connected):
    payer_with(world[0], connected, card=CARD_DECLINED)
    invoice = april_open(world)
    collect_all()
    response = api.post(f"/api/v1/invoices/{invoice.pk}/pay")
    assert response.status_code == 201
    assert (response.json()["number"], response.json()["status"], response.json()["failure_code"]) == (
        2,
        "failed",
        "soft_decline",
    )


def test_pay_now_without_a_method_is_409_and_writes_nothing(api, world, connected):
    invoice = april_open(world)
    entries = LogEntry.objects.count()
    response = api.post(f"/api/v1/invoices/{invoice.pk}/pay")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "no_payment_method")
    assert not Payment.objects.exists() and LogEntry.objects.count() == entries


def test_pay_now_with_the_gateway_down_is_pending_and_left_to_the_outbox(api, world, connected):
    from core.models import OutboxMessage

    payer_with(world[0], connected, card=CARD_OK)
    collection_method_set(actor=None, organization=world[0], method="manual")
    invoice = april_open(world)
    connected.down = True
    response = api.post(f"/api/v1/invoices/{invoice.pk}/pay")
    assert (response.status_code, response.json()["status"]) == (201, "pending")
    assert [(a["step"], a["outcome"]) for a in response.json()["attempts"]] == [("create", "errored")]
    [message] = OutboxMessage.objects.filter(kind="payments.collect")
    assert message.key == f"collect:{invoice.pk}:1"
    connected.down = False
    collect_all()
    assert Payment.objects.get().status == "succeeded" and connected.confirms() == 1


def test_refund_through_the_api(api, paid):
    invoice, payment = paid
    line = invoice.lines.exclude(kind="discount").get()
    for body, status, code in [
        ({"amount": 10}, 400, "invalid_amount"),  # a JSON number is never an amount
        ({"amount": "40.00"}, 400, "amount_exceeds_refundable"),
        ({"credit_note": 999999}, 400, "credit_note_mismatch"),
        ({"credit_note": 1, "lines": [{"line": line.pk, "amount": "1.00"}]}, 400, "validation_error"),
        ({"lines": [{"line": line.pk, "amount": "1.00"}], "amount": "5.00"}, 400, "amount_exceeds_credit_note"),
    ]:
        response = api.post(f"/api/v1/payments/{payment.pk}/refunds", body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
    assert not Refund.objects.exists() and not CreditNote.objects.exists()
    response = api.post(
        f"/api/v1/payments/{payment.pk}/refunds",
        {"reason": "Overcharge", "lines": [{"line": line.pk, "amount": "10.00"}]},
    )
    assert response.status_code == 201
    refund = Refund.objects.get()
    note = CreditNote.objects.get()
    assert response.json() == {
        "id": refund.pk,
        "payment": payment.pk,
        "status": "succeeded",
        "currency": "EUR",
        "amount": "11.90",
        "credit_note": note.pk,
        "credit_note_number": note.number,
        "gateway_refund_id": refund.gateway_refund_id,
        "failure_message": "",
        "created_at": refund.created_at.isoformat(),
    }
    assert note.reason == "Overcharge"
    detail = api.get(f"/api/v1/payments/{payment.pk}").json()
    assert detail["amount_refunded"] == "11.90" and [r["id"] for r in detail["refunds"]] == [refund.pk]


def test_payment_methods(api, world, connected):
    empty = api.get("/api/v1/organizations/acme/payment-methods").json()
    assert empty == {"customer": "acme", "collection_method": "automatic", "gateway": None, "methods": []}
    payer = payer_with(world[0], connected, card=CARD_OK)
    body = api.get("/api/v1/organizations/acme/payment-methods").json()
    assert body["customer"] == "acme" and body["gateway"] == "stripe"
    [method] = body["methods"]
    assert method == {
        "id": payer.default_payment_method_id,
        "type": "card",
        "label": "visa •••• 4242",
        "expires": "12/2034",
        "default": True,
    }
    assert CARD_OK not in str(body)
    assert api.get("/api/v1/organizations/nobody/payment-methods").status_code == 404
