"""The invoicing API on real PostgreSQL, with invoices made by the real billing run: exact list and
detail bodies, customer members' scoping (their finalized invoices only), the preview equal to the
draft it becomes, the state rules of finalize / void / mark-paid / uncollectible, credit notes
(proportional tax, amount due, excess to the credit balance) and the PDF download. Every refused
request is checked to have written nothing: no rows, no numbers, no audit entries."""

from __future__ import annotations

import base64
import hashlib
from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry
from django.core.files.base import ContentFile

from billing.models import CreditEntry
from billing.services.credit import credit_grant
from invoicing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, NumberSequence
from invoicing.services.billing_run import billing_run
from tests.factories import APIKeyFactory, MembershipFactory, OrganizationFactory, SubscriptionFactory
from tests.helpers import bearer, jwt_login, utc
from tests.invoicing.conftest import calls

D = Decimal
STANDARD = "VAT at the standard rate of DE"


@pytest.fixture
def key(in_a):
    return APIKeyFactory(name="erp", scopes=["read", "write"])


@pytest.fixture
def api(client_a, key):
    """`api.get(path)`, `api.post(path, body)` with the read/write API key."""

    class Api:
        def get(self, path, token=key.secret):
            return client_a.get(path, **bearer(token))

        def post(self, path, body=None, token=key.secret):
            return client_a.post(path, body or {}, content_type="application/json", **bearer(token))

    return Api()


def april_open(world) -> Invoice:
    """April's invoice (base fee 30.00 + 19 % VAT), finalized on 2 Apr 2027."""
    billing_run(at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 4, 2))
    return Invoice.objects.get(organization=world[0], bill_point=utc(2027, 4, 1))


def may_draft(world) -> Invoice:
    """April's invoice finalized, 500 calls in April, May's draft (in its grace period)."""
    april_open(world)
    calls("acme", *[utc(2027, 4, 3, 0, i % 60, i // 60) for i in range(500)])
    billing_run(at=utc(2027, 5, 1))
    return Invoice.objects.get(organization=world[0], bill_point=utc(2027, 5, 1))


class Nothing:
    """Snapshot of everything a refused request could write."""

    def __init__(self):
        self.before = self.counts()

    @staticmethod
    def counts():
        return {
            "invoices": list(Invoice.objects.order_by("id").values_list("id", "status", "amount_due", "number")),
            "lines": InvoiceLine.objects.count(),
            "notes": CreditNote.objects.count(),
            "note_lines": CreditNoteLine.objects.count(),
            "credits": CreditEntry.objects.count(),
            "numbers": list(NumberSequence.objects.order_by("prefix").values_list("prefix", "last_value")),
            "audit": LogEntry.objects.count(),
        }

    def changed(self, *, ignore: tuple[str, ...] = ()) -> bool:
        after = self.counts()
        return {k: v for k, v in after.items() if k not in ignore} != {
            k: v for k, v in self.before.items() if k not in ignore
        }


def error(response):
    return response.status_code, response.json()["error"]["code"]


def april_body(invoice: Invoice) -> dict:
    return {
        "id": invoice.pk,
        "number": "INV-000001",
        "status": "open",
        "customer": "acme",
        "subscription": invoice.subscription_id,
        "currency": "EUR",
        "bill_point": "2027-04-01T00:00:00+00:00",
        "period_start": "2027-04-01T00:00:00+00:00",
        "period_end": "2027-05-01T00:00:00+00:00",
        "subtotal": "30.00",
        "tax_total": "5.70",
        "total": "35.70",
        "credits_applied": "0.00",
        "amount_due": "35.70",
        "amount_paid": "0.00",
        "tax_problem": "",
        "grace_until": "2027-04-02T00:00:00+00:00",
        "issued_at": "2027-04-02T00:00:00+00:00",
        "due_at": "2027-04-16T00:00:00+00:00",
        "paid_at": None,
        "voided_at": None,
        "created_at": invoice.created_at.isoformat(),
        "pdf": f"/api/v1/invoices/{invoice.pk}/pdf",
    }


def base_fee_line(line: InvoiceLine, *, position: int) -> dict:
    return {
        "id": line.pk,
        "position": position,
        "kind": "base_fee",
        "description": "Basic base fee",
        "amount": "30.00",
        "currency": "EUR",
        "quantity": "1",
        "unit_amount": "30",
        "period_start": "2027-04-01T00:00:00+00:00" if position == 0 else "2027-05-01T00:00:00+00:00",
        "period_end": "2027-05-01T00:00:00+00:00" if position == 0 else "2027-06-01T00:00:00+00:00",
        "billing_period_start": "2027-04-01T00:00:00+00:00" if position == 0 else "2027-05-01T00:00:00+00:00",
        "billing_period_end": "2027-05-01T00:00:00+00:00" if position == 0 else "2027-06-01T00:00:00+00:00",
        "proration": None,
        "meter": None,
        "group": None,
        "coupon_redemption": None,
        "discounts_line": None,
        "corrects": None,
        "breakdown": [],
        "net_amount": "30.00",
        "tax_amount": "5.70",
        "tax_rate": "19",
        "tax_jurisdiction": "DE",
        "tax_reason": STANDARD,
        "taxes": [
            {
                "name": "VAT",
                "jurisdiction": "DE",
                "rate": "19",
                "taxable_amount": "30.00",
                "amount": "5.70",
                "reason": STANDARD,
            }
        ],
    }


# -- list and detail ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_and_detail_exact_bodies(world, api):
    may = may_draft(world)
    april = Invoice.objects.get(number="INV-000001")
    response = api.get("/api/v1/invoices")
    assert response.status_code == 200, response.content
    may_summary = {
        **april_body(may),
        "number": None,
        "status": "draft",
        "bill_point": "2027-05-01T00:00:00+00:00",
        "period_start": "2027-04-01T00:00:00+00:00",
        "period_end": "2027-06-01T00:00:00+00:00",
        "subtotal": "35.00",
        "tax_total": "6.65",
        "total": "41.65",
        "amount_due": "41.65",
        "grace_until": "2027-05-02T00:00:00+00:00",
        "issued_at": None,
        "due_at": None,
        "pdf": None,
    }
    assert response.json() == {"next": None, "previous": None, "results": [may_summary, april_body(april)]}

    detail = api.get(f"/api/v1/invoices/{april.pk}").json()
    [fee] = april.lines.all()
    assert detail == {
        **april_body(april),
        "seller": april.seller,
        "customer_details": {
            "external_id": "acme",
            "name": "Acme GmbH",
            "billing_email": "",
            "address_line1": "",
            "address_line2": "",
            "city": "",
            "region": "",
            "postal_code": "",
            "country": "DE",
            "tax_id": "",
            "tax_exempt": False,
            "tax_exemption_reference": "",
        },
        "lines": [base_fee_line(fee, position=0)],
        "credit_notes": [],
    }
    assert detail["seller"]["name"] == "Seller GmbH" and detail["seller"]["country"] == "DE"

    usage, fee = may.lines.order_by("position")
    lines = api.get(f"/api/v1/invoices/{may.pk}").json()["lines"]
    assert lines == [
        {
            **base_fee_line(usage, position=0),
            "kind": "usage",
            "description": "API calls",
            "amount": "5.00",
            "quantity": "500",
            "unit_amount": "0.01",
            "period_start": "2027-04-01T00:00:00+00:00",
            "period_end": "2027-05-01T00:00:00+00:00",
            "meter": "calls",
            "breakdown": [
                {
                    "label": "units",
                    "tier": None,
                    "quantity": "500",
                    "unit_amount": "0.01",
                    "flat_amount": "0",
                    "amount": "5",
                }
            ],
            "net_amount": "5.00",
            "tax_amount": "0.95",
            "taxes": [
                {
                    "name": "VAT",
                    "jurisdiction": "DE",
                    "rate": "19",
                    "taxable_amount": "5.00",
                    "amount": "0.95",
                    "reason": STANDARD,
                }
            ],
        },
        base_fee_line(fee, position=1),
    ]


@pytest.mark.django_db
def test_list_filters_and_pagination(world, api):
    may = may_draft(world)
    april = Invoice.objects.get(number="INV-000001")
    other = OrganizationFactory(external_id="globex", currency="EUR", country="DE")
    SubscriptionFactory(organization=other, at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 5, 1))  # globex: April's (finalized: its grace is over) and May's draft
    globex_may, globex_april = Invoice.objects.filter(organization=other).order_by("-bill_point")
    assert (globex_may.status, globex_april.status) == ("draft", "open")
    globex = [globex_may.pk, globex_april.pk]

    def ids(query):
        response = api.get(f"/api/v1/invoices{query}")
        assert response.status_code == 200, response.content
        return [i["id"] for i in response.json()["results"]]

    assert ids("") == [*globex, may.pk, april.pk]
    assert ids("?customer=acme") == [may.pk, april.pk]
    assert ids("?customer=acme&status=open") == [april.pk]
    assert ids("?status=draft") == [globex_may.pk, may.pk]
    assert ids("?status=open") == [globex_april.pk, april.pk]
    assert ids("?status=paid") == []

    first = api.get("/api/v1/invoices?limit=3").json()
    assert [i["id"] for i in first["results"]] == [*globex, may.pk] and first["previous"] is None
    second = api.get(first["next"].removeprefix("http://" + first["next"].split("/")[2])).json()
    assert [i["id"] for i in second["results"]] == [april.pk] and second["next"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?status=bogus", 400, "invalid_parameter"),
        ("?status=Open", 400, "invalid_parameter"),
        ("?customer=nobody", 404, "unknown_customer"),
        ("?customer=a%00b", 400, "invalid_parameter"),
        ("?limit=0", 400, "invalid_parameter"),
        ("?limit=1001", 400, "invalid_parameter"),
        ("?limit=ten", 400, "invalid_parameter"),
        ("?limit=-1", 400, "invalid_parameter"),
        ("?cursor=garbage", 400, "invalid_cursor"),
        ("?cursor=" + base64.b64encode(b"p=abc").decode(), 400, "invalid_cursor"),
        ("?cursor=" + base64.b64encode(b"o=x").decode(), 400, "invalid_cursor"),
        ("?cursor=" + base64.b64encode(b"r=x").decode(), 400, "invalid_cursor"),
        ("?cursor=" + base64.b64encode("p=\u0661".encode()).decode(), 400, "invalid_cursor"),
    ],
)
def test_list_refuses_bad_parameters(world, api, query, status, code):
    april_open(world)
    assert error(api.get(f"/api/v1/invoices{query}")) == (status, code)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["abc", "0", "-1", "1.0", "99999999999999999999", "9223372036854775807", "\u0661"])
def test_bad_or_unknown_ids_are_404(world, api, path):
    april_open(world)
    for suffix in ("", "/pdf", "/credit-notes"):
        assert error(api.get(f"/api/v1/invoices/{path}{suffix}")) == (404, "not_found")
    nothing = Nothing()
    for action in ("finalize", "void", "mark-paid", "mark-uncollectible", "credit-notes"):
        assert error(api.post(f"/api/v1/invoices/{path}/{action}")) == (404, "not_found")
    assert error(api.get(f"/api/v1/credit-notes/{path}")) == (404, "not_found")
    assert not nothing.changed()


@pytest.mark.django_db
def test_scopes(world, api, in_a):
    invoice = april_open(world)
    reader = APIKeyFactory(name="reader", scopes=["read"]).secret
    ingest = APIKeyFactory(name="ingest", scopes=["ingest"]).secret
    assert api.get("/api/v1/invoices", token=reader).status_code == 200
    assert error(api.get("/api/v1/invoices", token=ingest)) == (403, "permission_denied")
    nothing = Nothing()
    for action in ("void", "mark-paid", "mark-uncollectible", "credit-notes"):
        assert error(api.post(f"/api/v1/invoices/{invoice.pk}/{action}", token=reader)) == (403, "permission_denied")
    assert error(api.get("/api/v1/invoices", token="bk_nope")) == (401, "invalid_api_key")
    assert not nothing.changed()


# -- customer members --------------------------------------------------------------------------


@pytest.mark.django_db
def test_members_see_their_finalized_invoices_only(world, api, client_a, storage):
    may = may_draft(world)  # acme: April open, May draft
    april = Invoice.objects.get(number="INV-000001")
    globex = OrganizationFactory(external_id="globex", currency="EUR", country="DE")
    SubscriptionFactory(organization=globex, at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 5, 3))  # globex's April and May finalized, acme's May too
    may.refresh_from_db()
    assert may.status == "open"
    billing_run(at=utc(2027, 6, 1))  # June drafts for both
    acme_june = Invoice.objects.get(organization__external_id="acme", bill_point=utc(2027, 6, 1))
    theirs = Invoice.objects.filter(organization=globex).exclude(status="draft").first()
    theirs.pdf.save("theirs.pdf", ContentFile(b"%PDF-1.4 theirs"))
    member = MembershipFactory(organization=world[0])
    token = jwt_login(client_a, email=member.user.email)

    listed = api.get("/api/v1/invoices", token=token).json()["results"]
    assert [i["id"] for i in listed] == [may.pk, april.pk]  # not June's draft, nothing of globex
    assert [i["id"] for i in api.get("/api/v1/invoices?status=draft", token=token).json()["results"]] == []
    assert api.get(f"/api/v1/invoices/{april.pk}", token=token).json()["number"] == "INV-000001"
    april.pdf.save("INV-000001.pdf", ContentFile(b"%PDF-1.4 april"), save=True)
    response = api.get(f"/api/v1/invoices/{april.pk}/pdf", token=token)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"%PDF-1.4 april"
    for invoice in (acme_june, theirs):
        for suffix in ("", "/pdf", "/credit-notes"):
            assert error(api.get(f"/api/v1/invoices/{invoice.pk}{suffix}", token=token)) == (404, "not_found")
    assert error(api.get("/api/v1/invoices?customer=globex", token=token)) == (404, "unknown_customer")
    assert error(api.get("/api/v1/invoices/preview?customer=globex", token=token)) == (404, "unknown_customer")
    assert api.get("/api/v1/invoices/preview?customer=acme", token=token).status_code == 200
    # and what staff may do, members may not
    nothing = Nothing()
    assert error(api.post(f"/api/v1/invoices/{acme_june.pk}/finalize", token=token)) == (403, "permission_denied")
    assert error(api.post(f"/api/v1/invoices/{april.pk}/void", token=token)) == (403, "permission_denied")
    assert not nothing.changed()


@pytest.mark.django_db
def test_members_see_credit_notes_of_their_invoices_only(world, api, client_a):
    april = april_open(world)
    globex = OrganizationFactory(external_id="globex", currency="EUR", country="DE")
    SubscriptionFactory(organization=globex, at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 4, 2))
    theirs = Invoice.objects.get(organization=globex)
    notes = []
    for invoice in (april, theirs):
        line = invoice.lines.get()
        body = {"reason": "Outage", "lines": [{"line": line.pk, "amount": "1.00"}]}
        notes.append(api.post(f"/api/v1/invoices/{invoice.pk}/credit-notes", body).json()["id"])
    member = MembershipFactory(organization=world[0])
    token = jwt_login(client_a, email=member.user.email)
    assert api.get(f"/api/v1/credit-notes/{notes[0]}", token=token).json()["number"] == "CN-000001"
    assert error(api.get(f"/api/v1/credit-notes/{notes[1]}", token=token)) == (404, "not_found")
    listed = api.get(f"/api/v1/invoices/{april.pk}/credit-notes", token=token).json()["results"]
    assert [n["id"] for n in listed] == [notes[0]]


# -- preview -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_preview_equals_the_draft_it_becomes_and_writes_nothing(world, api):
    april_open(world)
    calls("acme", *[utc(2027, 4, 3, 0, i % 60, i // 60) for i in range(500)])
    nothing = Nothing()
    with time_machine.travel(utc(2027, 4, 20), tick=False):
        response = api.get("/api/v1/invoices/preview?customer=acme")
    assert response.status_code == 200, response.content
    assert not nothing.changed()
    body = response.json()
    [upcoming] = body["invoices"]
    assert body["customer"] == "acme"
    assert {k: v for k, v in upcoming.items() if k != "lines"} == {
        "subscription": world[1].pk,
        "bill_point": "2027-05-01T00:00:00+00:00",
        "currency": "EUR",
        "period_start": "2027-04-01T00:00:00+00:00",
        "period_end": "2027-06-01T00:00:00+00:00",
        "subtotal": "35.00",
        "tax_total": "6.65",
        "total": "41.65",
        "tax_problem": "",
    }

    billing_run(at=utc(2027, 5, 1))
    draft = api.get(f"/api/v1/invoices/{Invoice.objects.get(bill_point=utc(2027, 5, 1)).pk}").json()
    assert [{k: v for k, v in line.items() if k not in ("id", "position")} for line in draft["lines"]] == upcoming[
        "lines"
    ]
    assert [line["description"] for line in upcoming["lines"]] == ["API calls", "Basic base fee"]
    assert (draft["subtotal"], draft["tax_total"], draft["total"]) == ("35.00", "6.65", "41.65")


@pytest.mark.django_db
def test_preview_of_a_customer_without_live_subscription_and_bad_requests(world, api):
    OrganizationFactory(external_id="idle", currency="EUR")
    assert api.get("/api/v1/invoices/preview?customer=idle").json() == {"customer": "idle", "invoices": []}
    assert error(api.get("/api/v1/invoices/preview")) == (400, "missing_parameter")
    assert error(api.get("/api/v1/invoices/preview?customer=")) == (400, "missing_parameter")
    assert error(api.get("/api/v1/invoices/preview?customer=nobody")) == (404, "unknown_customer")


# -- state changes -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_finalize_a_draft_now_and_refusals(world, api):
    draft = may_draft(world)
    april = Invoice.objects.get(number="INV-000001")
    nothing = Nothing()
    assert error(api.post(f"/api/v1/invoices/{april.pk}/finalize")) == (409, "invoice_not_draft")
    assert not nothing.changed()
    with time_machine.travel(utc(2027, 5, 1, 9), tick=False):
        response = api.post(f"/api/v1/invoices/{draft.pk}/finalize")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["number"], body["issued_at"], body["due_at"]) == (
        "open",
        "INV-000002",
        "2027-05-01T09:00:00+00:00",
        "2027-05-15T09:00:00+00:00",
    )
    assert (body["total"], body["amount_due"], body["pdf"]) == ("41.65", "41.65", f"/api/v1/invoices/{draft.pk}/pdf")
    assert [line["amount"] for line in body["lines"]] == ["5.00", "30.00"]
    assert error(api.post(f"/api/v1/invoices/{draft.pk}/finalize")) == (409, "invoice_not_draft")


@pytest.mark.django_db
def test_finalize_refused_for_a_tax_problem_takes_no_number(world, api):
    nowhere = OrganizationFactory(external_id="nowhere", currency="EUR", country="")
    SubscriptionFactory(organization=nowhere, at=utc(2027, 4, 1))
    april_open(world)  # acme's April: INV-000001
    held = Invoice.objects.get(organization=nowhere)
    assert NumberSequence.objects.get(prefix="INV-").last_value == 1
    assert held.status == "draft" and held.tax_problem
    nothing = Nothing()
    response = api.post(f"/api/v1/invoices/{held.pk}/finalize")
    assert error(response) == (409, "tax_problem")
    assert held.tax_problem in response.json()["error"]["message"]
    # no number taken, nothing finalized, nothing written at all
    assert not nothing.changed()


@pytest.mark.django_db
def test_service_finalization_is_audited(world, api):
    """Convention 11: every state change writes an audit row. Finalization writes with
    `bulk_update`, which django-auditlog does not see, so it adds its own entries."""
    draft = may_draft(world)
    entries = LogEntry.objects.get_for_object(draft).count()
    assert api.post(f"/api/v1/invoices/{draft.pk}/finalize").json()["status"] == "open"
    assert LogEntry.objects.get_for_object(draft).count() > entries


@pytest.mark.django_db
def test_service_refused_finalize_writes_nothing(world):
    """Refused for a tax problem, invoice_finalize writes nothing: not the moved grace period, not
    an audit entry for a held draft re-saved unchanged."""
    from core.errors import DomainError
    from invoicing.services.finalize import invoice_finalize

    nowhere = OrganizationFactory(external_id="nowhere", currency="EUR", country="")
    SubscriptionFactory(organization=nowhere, at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 4, 1))
    held = Invoice.objects.get(organization=nowhere)
    before = (held.grace_until, LogEntry.objects.count())
    with pytest.raises(DomainError):
        invoice_finalize(invoice=held, at=utc(2027, 4, 1, 6))
    held.refresh_from_db()
    assert (held.grace_until, LogEntry.objects.count()) == before


@pytest.mark.django_db
def test_void_mark_paid_and_uncollectible_state_rules(world, api, key):
    draft = may_draft(world)
    april = Invoice.objects.get(number="INV-000001")

    nothing = Nothing()
    assert error(api.post(f"/api/v1/invoices/{draft.pk}/void")) == (409, "invoice_not_voidable")
    assert error(api.post(f"/api/v1/invoices/{draft.pk}/mark-paid")) == (409, "invoice_not_open")
    assert error(api.post(f"/api/v1/invoices/{draft.pk}/mark-uncollectible")) == (409, "invoice_not_open")
    assert error(api.post(f"/api/v1/invoices/{april.pk}/mark-paid", {"reference": "x" * 201})) == (
        400,
        "validation_error",
    )
    assert error(api.post(f"/api/v1/invoices/{april.pk}/mark-paid", ["wire"])) == (400, "validation_error")
    assert not nothing.changed()

    with time_machine.travel(utc(2027, 5, 3, 10), tick=False):
        response = api.post(f"/api/v1/invoices/{april.pk}/mark-uncollectible")
        assert response.status_code == 200 and response.json()["status"] == "uncollectible"
        assert error(api.post(f"/api/v1/invoices/{april.pk}/mark-uncollectible")) == (409, "invoice_not_open")
        paid = api.post(f"/api/v1/invoices/{april.pk}/mark-paid", {"reference": "wire 2027-05-03"}).json()
    # the write-off's time stays when it is paid after all (receivables as of a past day need it)
    assert Invoice.objects.get(pk=april.pk).uncollectible_at == utc(2027, 5, 3, 10)
    assert (paid["status"], paid["amount_paid"], paid["amount_due"], paid["paid_at"]) == (
        "paid",
        "35.70",
        "0.00",
        "2027-05-03T10:00:00+00:00",
    )
    event = LogEntry.objects.get_for_object(april).filter(changes__event__1="invoice.paid_manually").get()
    assert event.changes_dict["reference"] == [None, "wire 2027-05-03"]
    assert event.additional_data == {"origin": "api_key", "api_key": "erp", "api_key_prefix": key.api_key.prefix}

    nothing = Nothing()
    assert error(api.post(f"/api/v1/invoices/{april.pk}/mark-paid")) == (409, "invoice_not_open")
    assert error(api.post(f"/api/v1/invoices/{april.pk}/void")) == (409, "invoice_not_voidable")
    assert error(api.post(f"/api/v1/invoices/{april.pk}/mark-uncollectible")) == (409, "invoice_not_open")
    assert not nothing.changed()

    billing_run(at=utc(2027, 5, 2))  # May's finalized: open
    may = api.get(f"/api/v1/invoices/{draft.pk}").json()
    assert (may["status"], may["number"]) == ("open", "INV-000002")
    with time_machine.travel(utc(2027, 5, 4), tick=False):
        voided = api.post(f"/api/v1/invoices/{draft.pk}/void").json()
    assert (voided["status"], voided["amount_due"], voided["voided_at"]) == (
        "void",
        "0.00",
        "2027-05-04T00:00:00+00:00",
    )
    entry = LogEntry.objects.get_for_object(Invoice.objects.get(pk=draft.pk)).order_by("-id").first()
    assert entry.changes_dict["status"] == ["open", "void"] and entry.additional_data["api_key"] == "erp"
    nothing = Nothing()
    for action in ("void", "mark-paid", "mark-uncollectible"):
        assert error(api.post(f"/api/v1/invoices/{draft.pk}/{action}"))[0] == 409
    assert not nothing.changed()


@pytest.mark.django_db
def test_void_returns_applied_credit_to_the_balance(world, api):
    credit_grant(actor=None, organization=world[0], amount=D("10.00"), currency="EUR", kind="promotional")
    april = april_open(world)
    assert (april.credits_applied, april.amount_due) == (D("10.00"), D("25.70"))
    with time_machine.travel(utc(2027, 4, 10), tick=False):  # the balance as it stands after April 2
        assert api.get("/api/v1/organizations/acme/credits").json()["balance"] == "0.00"
        assert api.post(f"/api/v1/invoices/{april.pk}/void").json()["status"] == "void"
        assert api.get("/api/v1/organizations/acme/credits").json()["balance"] == "10.00"


@pytest.mark.django_db
def test_malformed_json_is_refused(world, api, client_a, key):
    april = april_open(world)
    nothing = Nothing()
    response = client_a.post(
        f"/api/v1/invoices/{april.pk}/mark-paid", "{not json", content_type="application/json", **bearer(key.secret)
    )
    assert error(response) == (400, "malformed_request")
    response = client_a.post(
        f"/api/v1/invoices/{april.pk}/credit-notes", "{", content_type="application/json", **bearer(key.secret)
    )
    assert error(response) == (400, "malformed_request")
    assert not nothing.changed()


# -- credit notes ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_credit_notes_lower_the_amount_due_with_proportional_tax(world, api):
    april = april_open(world)
    fee = april.lines.get()
    with time_machine.travel(utc(2027, 4, 5), tick=False):
        response = api.post(
            f"/api/v1/invoices/{april.pk}/credit-notes",
            {"reason": "Outage on 3 April", "lines": [{"line": fee.pk, "amount": "3.33"}]},
        )
    assert response.status_code == 201, response.content
    note = CreditNote.objects.get()
    assert response.json() == {
        "id": note.pk,
        "number": "CN-000001",
        "invoice": april.pk,
        "invoice_number": "INV-000001",
        "customer": "acme",
        "reason": "Outage on 3 April",
        "currency": "EUR",
        "subtotal": "3.33",
        "tax_total": "0.63",  # 5.70 * 3.33 / 30.00 = 0.6327
        "total": "3.96",
        "applied_to_invoice": "3.96",
        "credited_to_balance": "0.00",
        "created_at": "2027-04-05T00:00:00+00:00",
        "lines": [
            {
                "id": note.lines.get().pk,
                "line": fee.pk,
                "description": "Basic base fee",
                "amount": "3.33",
                "tax_amount": "0.63",
            }
        ],
    }
    detail = api.get(f"/api/v1/invoices/{april.pk}").json()
    assert (detail["status"], detail["amount_due"], detail["total"]) == ("open", "31.74", "35.70")
    assert detail["credit_notes"] == [{"id": note.pk, "number": "CN-000001", "total": "3.96"}]
    assert api.get(f"/api/v1/credit-notes/{note.pk}").json() == response.json()
    [created] = LogEntry.objects.get_for_object(note)
    assert created.action == LogEntry.Action.CREATE and created.additional_data["api_key"] == "erp"
    assert api.get(f"/api/v1/invoices/{april.pk}/credit-notes").json() == {
        "next": None,
        "previous": None,
        "results": [response.json()],
    }

    # more than is left on the line: refused, nothing written
    nothing = Nothing()
    too_much = {"reason": "Again", "lines": [{"line": fee.pk, "amount": "26.68"}]}
    response = api.post(f"/api/v1/invoices/{april.pk}/credit-notes", too_much)
    assert error(response) == (400, "amount_exceeds_line")
    assert "26.67" in response.json()["error"]["message"]
    assert not nothing.changed()

    # the rest of the line: the invoice is settled
    rest = api.post(
        f"/api/v1/invoices/{april.pk}/credit-notes",
        {"reason": "Refund the month", "lines": [{"line": fee.pk, "amount": "26.67"}]},
    ).json()
    assert (rest["number"], rest["subtotal"], rest["tax_total"], rest["total"]) == (
        "CN-000002",
        "26.67",
        "5.07",
        "31.74",
    )
    assert (rest["applied_to_invoice"], rest["credited_to_balance"]) == ("31.74", "0.00")
    detail = api.get(f"/api/v1/invoices/{april.pk}").json()
    assert (detail["status"], detail["amount_due"]) == ("paid", "0.00")
    assert not CreditEntry.objects.exists()


@pytest.mark.django_db
def test_credit_beyond_the_amount_due_goes_to_the_balance(world, api):
    credit_grant(actor=None, organization=world[0], amount=D("30.00"), currency="EUR", kind="promotional")
    april = april_open(world)
    assert (april.credits_applied, april.amount_due) == (D("30.00"), D("5.70"))
    fee = april.lines.get()
    with time_machine.travel(utc(2027, 4, 10), tick=False):
        note = api.post(
            f"/api/v1/invoices/{april.pk}/credit-notes",
            {"reason": "Goodwill", "lines": [{"line": fee.pk, "amount": "10.00"}]},
        ).json()
        balance = api.get("/api/v1/organizations/acme/credits").json()["balance"]
    assert (note["total"], note["applied_to_invoice"], note["credited_to_balance"]) == ("11.90", "5.70", "6.20")
    detail = api.get(f"/api/v1/invoices/{april.pk}").json()
    assert (detail["status"], detail["amount_due"]) == ("paid", "0.00")
    grant = CreditEntry.objects.get(kind="credit_note")
    assert (grant.amount, grant.reference) == (D("6.20"), "CN-000001")
    assert balance == "6.20"


@pytest.mark.django_db
def test_a_credit_note_on_a_paid_invoice_is_all_credit(world, api):
    april = april_open(world)
    api.post(f"/api/v1/invoices/{april.pk}/mark-paid", {"reference": "wire"})
    fee = april.lines.get()
    note = api.post(
        f"/api/v1/invoices/{april.pk}/credit-notes",
        {"reason": "Refund", "lines": [{"line": fee.pk, "amount": "30.00"}]},
    ).json()
    assert (note["total"], note["applied_to_invoice"], note["credited_to_balance"]) == ("35.70", "0.00", "35.70")
    assert api.get("/api/v1/organizations/acme/credits").json()["balance"] == "35.70"
    nothing = Nothing()
    again = {"reason": "Twice", "lines": [{"line": fee.pk, "amount": "0.01"}]}
    assert error(api.post(f"/api/v1/invoices/{april.pk}/credit-notes", again)) == (400, "amount_exceeds_line")
    assert not nothing.changed()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("lines", "reason", "status", "code"),
    [
        ([{"line": "FEE", "amount": "1e1"}], "x", 400, "invalid_amount"),
        ([{"line": "FEE", "amount": " 10.00"}], "x", 400, "invalid_amount"),
        ([{"line": "FEE", "amount": 10}], "x", 400, "invalid_amount"),
        ([{"line": "FEE", "amount": 10.5}], "x", 400, "invalid_amount"),
        ([{"line": "FEE", "amount": "10.001"}], "x", 400, "invalid_amount"),
        ([{"line": "FEE", "amount": "0.00"}], "x", 400, "invalid_amount"),
        ([{"line": "FEE", "amount": "-5.00"}], "x", 400, "invalid_amount"),
        ([{"line": "FEE", "amount": "NaN"}], "x", 400, "invalid_amount"),
        ([{"line": "FEE", "amount": "30.01"}], "x", 400, "amount_exceeds_line"),
        ([{"line": "FEE", "amount": "20.00"}, {"line": "FEE", "amount": "20.00"}], "x", 400, "duplicate_line"),
        ([{"line": "FEE", "amount": "10.00"}], "   ", 400, "reason_required"),
        ([{"line": "FEE", "amount": "10.00"}], "", 400, "reason_required"),
        ([], "x", 400, "lines_required"),
        ([{"line": 2**62, "amount": "1.00"}], "x", 400, "unknown_line"),
        ([{"line": "OTHER", "amount": "1.00"}], "x", 400, "unknown_line"),
        ([{"line": "abc", "amount": "1.00"}], "x", 400, "validation_error"),
        ([{"line": 2**64, "amount": "1.00"}], "x", 400, "validation_error"),
        ([{"amount": "1.00"}], "x", 400, "validation_error"),
        ([{"line": "FEE"}], "x", 400, "validation_error"),
        ("FEE", "x", 400, "validation_error"),
        ([{"line": "FEE", "amount": "1.00"}], None, 400, "validation_error"),
        ([{"line": "FEE", "amount": "1.00"}], "r" * 301, 400, "validation_error"),
    ],
)
def test_refused_credit_notes_write_nothing(world, api, lines, reason, status, code):
    may = may_draft(world)
    april = Invoice.objects.get(number="INV-000001")
    ids = {"FEE": april.lines.get().pk, "OTHER": may.lines.get(kind="usage").pk}

    def resolve(value):
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return ids.get(value, value) if isinstance(value, str) else value

    body = {"lines": resolve(lines)}
    if reason is not None:
        body["reason"] = reason
    nothing = Nothing()
    response = api.post(f"/api/v1/invoices/{april.pk}/credit-notes", body)
    assert error(response) == (status, code), response.content
    assert not nothing.changed()


@pytest.mark.django_db
def test_credit_notes_need_a_finalized_invoice_and_a_non_discount_line(world, api):
    draft = may_draft(world)
    april = Invoice.objects.get(number="INV-000001")
    nothing = Nothing()
    body = {"reason": "x", "lines": [{"line": draft.lines.get(kind="usage").pk, "amount": "1.00"}]}
    assert error(api.post(f"/api/v1/invoices/{draft.pk}/credit-notes", body)) == (409, "invoice_not_final")
    api_void = api.post(f"/api/v1/invoices/{april.pk}/void")
    assert api_void.status_code == 200
    nothing = Nothing()
    body = {"reason": "x", "lines": [{"line": april.lines.get().pk, "amount": "1.00"}]}
    assert error(api.post(f"/api/v1/invoices/{april.pk}/credit-notes", body)) == (409, "invoice_not_final")
    assert not nothing.changed()


# -- PDF ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pdf_download_serves_the_stored_file(world, api, storage):
    april = april_open(world)
    april.pdf.save("INV-000001.pdf", ContentFile(b"%PDF-1.4 stored"), save=True)
    response = api.get(f"/api/v1/invoices/{april.pk}/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="INV-000001.pdf"'
    assert b"".join(response.streaming_content) == b"%PDF-1.4 stored"


@pytest.mark.django_db
def test_pdf_is_rendered_and_stored_when_missing(world, api, client_a, key, storage):
    april = april_open(world)
    assert not april.pdf
    audit = LogEntry.objects.count()
    response = client_a.get(f"/api/v1/invoices/{april.pk}/pdf", HTTP_ACCEPT="application/pdf", **bearer(key.secret))
    assert response.status_code == 200, response.content if not response.streaming else ""
    body = b"".join(response.streaming_content)
    assert body.startswith(b"%PDF-")
    assert response["Content-Disposition"] == 'attachment; filename="INV-000001.pdf"'
    april.refresh_from_db()
    assert april.pdf and april.pdf_sha256 == hashlib.sha256(body).hexdigest()
    assert LogEntry.objects.count() == audit + 1  # the stored PDF, audited
    again = b"".join(api.get(f"/api/v1/invoices/{april.pk}/pdf").streaming_content)
    assert again == body


@pytest.mark.django_db
def test_pdf_of_a_draft_is_409_even_for_a_pdf_client(world, api, client_a, key):
    draft = may_draft(world)
    nothing = Nothing()
    assert error(api.get(f"/api/v1/invoices/{draft.pk}/pdf")) == (409, "invoice_not_final")
    response = client_a.get(f"/api/v1/invoices/{draft.pk}/pdf", HTTP_ACCEPT="application/pdf", **bearer(key.secret))
    assert response["Content-Type"] == "application/json"
    assert error(response) == (409, "invoice_not_final")
    assert not nothing.changed()


@pytest.mark.django_db
def test_the_schema_documents_the_invoice_endpoints(world, api, client_a):
    schema = client_a.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/invoices",
        "/api/v1/invoices/preview",
        "/api/v1/invoices/{id}",
        "/api/v1/invoices/{id}/pdf",
        "/api/v1/invoices/{id}/finalize",
        "/api/v1/invoices/{id}/void",
        "/api/v1/invoices/{id}/mark-paid",
        "/api/v1/invoices/{id}/mark-uncollectible",
        "/api/v1/invoices/{id}/credit-notes",
        "/api/v1/credit-notes/{id}",
    ):
        assert path in paths, sorted(paths)
    assert "application/pdf" in paths["/api/v1/invoices/{id}/pdf"]["get"]["responses"]["200"]["content"]


@pytest.mark.django_db
def test_service_refuses_a_line_credited_twice_in_one_note(world):
    """The service itself (the API also refuses a repeated line, `duplicate_line`): two entries of
    20.00 for one 30.00 line are checked together, not each against earlier notes only."""
    from core.errors import DomainError
    from invoicing.services.invoice import CreditNoteLineInput, credit_note_create

    april = april_open(world)
    fee = april.lines.get()
    twice = [CreditNoteLineInput(invoice_line_id=fee.pk, amount=D("20.00"))] * 2
    with pytest.raises(DomainError):
        credit_note_create(actor=None, invoice=april, reason="twice", lines=twice)


@pytest.mark.django_db
def test_a_discount_line_names_the_line_it_reduces_and_takes_no_credit_note(world, api):
    from billing.services.coupon import coupon_create, coupon_redeem

    coupon = coupon_create(
        actor=None, code="HALF", name="Half off", discount_type="percentage", percent_off="50", duration="once"
    )
    with time_machine.travel(utc(2027, 4, 1), tick=False):
        redemption = coupon_redeem(actor=None, coupon=coupon, organization=world[0])
    invoice = april_open(world)
    lines = api.get(f"/api/v1/invoices/{invoice.pk}").json()["lines"]
    assert [(x["position"], x["kind"], x["amount"], x["net_amount"], x["tax_amount"]) for x in lines] == [
        (0, "base_fee", "30.00", "15.00", "2.85"),
        (1, "discount", "-15.00", "0.00", "0.00"),
    ]
    assert (lines[1]["discounts_line"], lines[1]["coupon_redemption"], lines[1]["tax_rate"]) == (0, redemption.pk, "19")
    assert lines[0]["discounts_line"] is None
    nothing = Nothing()
    body = {"reason": "x", "lines": [{"line": lines[1]["id"], "amount": "1.00"}]}
    assert error(api.post(f"/api/v1/invoices/{invoice.pk}/credit-notes", body)) == (400, "unknown_line")
    body = {"reason": "x", "lines": [{"line": lines[0]["id"], "amount": "15.01"}]}  # the net, not the 30.00
    assert error(api.post(f"/api/v1/invoices/{invoice.pk}/credit-notes", body)) == (400, "amount_exceeds_line")
    assert not nothing.changed()


@pytest.mark.django_db
def test_list_and_detail_queries_do_not_grow_with_rows(world, api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(path):
        api.get(path)  # the API key's last use is recorded at most once a minute: not counted
        with CaptureQueriesContext(connection) as captured:
            assert api.get(path).status_code == 200
        return len(captured)

    invoice = april_open(world)
    few, one = queries("/api/v1/invoices"), queries(f"/api/v1/invoices/{invoice.pk}")
    for n in range(5):
        org = OrganizationFactory(external_id=f"more-{n}", currency="EUR", country="DE")
        SubscriptionFactory(organization=org, at=utc(2027, 4, 1))
    calls("acme", *[utc(2027, 4, 3, 0, i) for i in range(5)])
    billing_run(at=utc(2027, 6, 2))
    assert Invoice.objects.count() == 18
    many = Invoice.objects.get(organization=world[0], bill_point=utc(2027, 5, 1))
    assert many.lines.count() == 2
    assert queries("/api/v1/invoices") == few
    assert queries(f"/api/v1/invoices/{many.pk}") == one


@pytest.mark.django_db
def test_a_stored_pdf_missing_from_storage_is_503_not_a_new_rendering(world, api, storage):
    april = april_open(world)
    april.pdf.save("INV-000001.pdf", ContentFile(b"%PDF-1.4 stored"), save=True)
    storage.delete(april.pdf.name)
    assert error(api.get(f"/api/v1/invoices/{april.pk}/pdf")) == (503, "pdf_unavailable")
    april.refresh_from_db()
    assert april.pdf.name == "invoices/INV-000001.pdf"


@pytest.mark.django_db
def test_a_cursor_past_every_id_is_an_empty_page(world, api):
    april_open(world)
    cursor = base64.b64encode(b"p=99999999999999999999999").decode()
    response = api.get(f"/api/v1/invoices?cursor={cursor}")
    assert response.status_code == 200, response.content
    assert [i["number"] for i in response.json()["results"]] == ["INV-000001"]


@pytest.mark.django_db
def test_a_void_invoices_pdf_over_the_api_says_void(world, api, storage):
    import io

    from pypdf import PdfReader

    april = april_open(world)
    with time_machine.travel(utc(2027, 5, 3, 10), tick=False):
        assert api.post(f"/api/v1/invoices/{april.pk}/void").status_code == 200
    response = api.get(f"/api/v1/invoices/{april.pk}/pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = " ".join(PdfReader(io.BytesIO(b"".join(response.streaming_content))).pages[0].extract_text().split())
    assert "VOID · voided on 3 May 2027 · Invoice INV-000001 is not payable" in text
