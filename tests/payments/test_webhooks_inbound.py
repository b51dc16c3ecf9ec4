"""Inbound Stripe webhooks: verified before any write, stored once per event id, applied
idempotently and in order; localstripe's own signed events go through the same endpoint."""

from __future__ import annotations

import json
import time
import urllib.request
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from auditlog.models import LogEntry
from django_tenants.utils import tenant_context

from invoicing.models import Invoice
from payments.models import GatewayEventRecord, GatewaySettings, Payment
from payments.services.inbound import gateway_events_apply, gateway_events_schedule
from tests.invoicing.test_invoice_api import april_open
from tests.payments.conftest import IBAN_FAILS, WEBHOOK_SECRET, collect_all, payer_with, signed
from tests.receiver import receiver

D = Decimal
URL = "/payments/stripe/webhook"


def post(client, body: bytes, signature: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return client.post(URL, body, content_type="application/json", **headers)


def delivered(client, body: bytes, signature: str) -> str:
    """Post an event (stored, answered `received`), then the worker's run: the event's outcome."""
    assert post(client, body, signature).json() == {"received": True, "outcome": "received"}
    assert gateway_events_apply() == 1
    return GatewayEventRecord.objects.get(event_id=json.loads(body)["id"]).outcome


def intent_event(payment: Payment, *, event_id: str, type_: str, status: str, created: int, error=None) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": type_,
        "created": created,
        "data": {
            "object": {
                "id": payment.gateway_payment_id,
                "object": "payment_intent",
                "amount": 3570,
                "currency": "eur",
                "status": status,
                "payment_method": payment.payment_method_id,
                "last_payment_error": error,
                "latest_charge": "ch_test",
            }
        },
    }


@pytest.fixture
def processing(world, connected):
    """Acme's April invoice with a SEPA debit in flight (processing)."""
    payer_with(world[0], connected, iban=IBAN_FAILS)
    invoice = april_open(world)
    collect_all()
    payment = Payment.objects.get()
    assert payment.status == "processing"
    return invoice, payment


def written() -> tuple:
    return (
        GatewayEventRecord.objects.count(),
        list(Payment.objects.values_list("status", "applied_at")),
        list(Invoice.objects.values_list("status", "amount_paid")),
        LogEntry.objects.count(),
    )


def test_signature_matrix_refuses_everything_and_writes_nothing(processing, client_a, client_b, tenant_a, tenant_b):
    _, payment = processing
    now = int(time.time())
    event = intent_event(payment, event_id="evt_1", type_="payment_intent.succeeded", status="succeeded", created=now)
    body, good = signed(event)
    before = written()
    cases = {
        "no signature": (body, None),
        "forged body": (body.replace(b"succeeded", b"succeedex"), good),
        "forged signature": (body, good[:-4] + "0000"),
        "stale": signed(event, timestamp=now - 301),
        "future": signed(event, timestamp=now + 360),
        "wrong secret": signed(event, secret="whsec_other"),
        "not json": signed({"x": 1}),
    }
    for name, (case_body, signature) in cases.items():
        response = post(client_a, case_body, signature)
        assert (response.status_code, response.json().get("error", {}).get("code")) == (400, "webhook_rejected"), (
            name,
            response.content,
        )
    # another tenant's endpoint, with tenant A's valid signature: B has its own secret
    with tenant_context(tenant_b):
        row = GatewaySettings(stripe_publishable_key="pk_test_" + "b" * 24)
        row.stripe_secret_key_set("sk_test_" + "b" * 24)
        row.stripe_webhook_secret_set("whsec_test_tenant_b")
        row.save()
    response = post(client_b, body, good)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "webhook_rejected")
    with tenant_context(tenant_b):
        assert not GatewayEventRecord.objects.exists()
    with tenant_context(tenant_a):
        assert written() == before


def test_a_valid_event_applies_once_and_a_replay_writes_nothing(processing, client_a, in_a):
    invoice, payment = processing
    event = intent_event(
        payment, event_id="evt_ok", type_="payment_intent.succeeded", status="succeeded", created=int(time.time())
    )
    body, signature = signed(event)
    assert delivered(client_a, body, signature) == "applied"
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", D("35.70"))
    after = written()
    assert post(client_a, body, signature).json() == {"received": True, "outcome": "duplicate"}
    assert gateway_events_apply() == 0
    assert written() == after


def test_an_older_event_never_overrides_a_newer_state(processing, client_a, in_a):
    invoice, payment = processing
    now = int(time.time())
    failed = intent_event(
        payment,
        event_id="evt_new",
        type_="payment_intent.payment_failed",
        status="requires_payment_method",
        created=now + 5,  # Stripe's clock ahead of the sync answer's
        error={"code": "insufficient_funds", "message": "Insufficient funds."},
    )
    assert delivered(client_a, *signed(failed)) == "applied"
    older = intent_event(
        payment, event_id="evt_old", type_="payment_intent.processing", status="processing", created=now
    )
    assert delivered(client_a, *signed(older)) == "stale"
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "insufficient_funds")
    assert Invoice.objects.get(pk=invoice.pk).status == "open"


def test_success_after_success_is_applied_once(processing, client_a, in_a):
    """The three stored together are applied by one run, in one transaction, in the order received."""
    invoice, payment = processing
    now = int(time.time())
    for n in range(3):
        event = intent_event(
            payment, event_id=f"evt_s{n}", type_="payment_intent.succeeded", status="succeeded", created=now + n
        )
        assert post(client_a, *signed(event)).json()["outcome"] == "received"
    assert gateway_events_apply() == 3
    outcomes = GatewayEventRecord.objects.order_by("id").values_list("event_id", "outcome")
    assert list(outcomes) == [("evt_s0", "applied"), ("evt_s1", "stale"), ("evt_s2", "stale")]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == ("paid", D("35.70"), D("0"))
    assert Payment.objects.filter(settled_invoice=True).count() == 1


def test_unknown_types_are_stored_and_ignored(processing, client_a, in_a):
    body, signature = signed(
        {
            "id": "evt_u",
            "object": "event",
            "type": "customer.updated",
            "created": int(time.time()),
            "data": {"object": {"object": "customer", "id": "cus_x"}},
        }
    )
    assert delivered(client_a, body, signature) == "ignored"
    assert GatewayEventRecord.objects.get().outcome == "ignored"


def test_a_stored_event_schedules_one_pending_run(
    processing, client_a, in_a, monkeypatch, django_capture_on_commit_callbacks
):
    """On commit, a run is enqueued unless one is pending (it has not read yet, so it will see the
    event); the run clears the mark before it reads."""
    from django.core.cache import cache

    from payments.services import inbound

    sent = []
    monkeypatch.setattr(inbound.current_app, "send_task", lambda name, **kw: sent.append((name, kw["headers"])))
    schema = in_a.schema_name
    cache.delete(inbound._pending_key(schema))
    _, payment = processing
    for n in range(2):
        event = intent_event(
            payment, event_id=f"evt_p{n}", type_="payment_intent.processing", status="processing", created=n
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert post(client_a, *signed(event)).json()["outcome"] == "received"
    assert sent == [("payments.gateway_events_apply", {"_schema_name": schema})]
    assert inbound.gateway_events_apply_all() == 2
    assert gateway_events_schedule(schema=schema) is True  # the mark was cleared: the next event sends
    assert len(sent) == 2
    cache.delete(inbound._pending_key(schema))


def test_localstripes_own_signed_event_fails_the_sepa_debit(world, connected, client_a, localstripe_url):
    with receiver() as hooks:
        form = urlencode({"url": hooks.url, "secret": WEBHOOK_SECRET}).encode()
        urllib.request.urlopen(
            urllib.request.Request(f"{localstripe_url}/_config/webhooks/payments-tests", data=form, method="POST")
        )
        payer_with(world[0], connected, iban=IBAN_FAILS)
        invoice = april_open(world)
        collect_all()
        payment = Payment.objects.get()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            mine = [
                r
                for r in hooks.requests
                if json.loads(r.body)["type"] == "payment_intent.payment_failed"
                and json.loads(r.body)["data"]["object"]["id"] == payment.gateway_payment_id
            ]
            if mine:
                break
            time.sleep(0.1)
        [delivery] = mine
    assert delivered(client_a, delivery.body, delivery.headers["stripe-signature"]) == "applied"
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "soft_decline")
    assert Invoice.objects.get(pk=invoice.pk).status == "open"


def test_events_stored_together_once_each_in_order(processing, in_a, monkeypatch, django_capture_on_commit_callbacks):
    """The lane's group commit stores a batch with one INSERT: an id given twice, or stored
    already, is `duplicate` and inserts nothing; the rows keep the batch's order; one apply run is
    scheduled for the lot."""
    from payments.gateways.stripe import stripe_event
    from payments.services import inbound

    scheduled = []
    monkeypatch.setattr(inbound, "gateway_events_schedule", lambda schema: scheduled.append(schema))
    _, payment = processing
    events = [
        stripe_event(
            intent_event(
                payment, event_id=f"evt_g{n}", type_="payment_intent.processing", status="processing", created=n
            )
        )
        for n in (3, 1, 2)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert inbound.gateway_events_store("stripe", [events[0], events[1], events[0], events[2]]) == [
            "received",
            "received",
            "duplicate",
            "received",
        ]
    assert scheduled == [in_a.schema_name]
    rows = GatewayEventRecord.objects.order_by("id").values_list("event_id", "type", "outcome", "payload")
    assert [(e, t, o, p["id"]) for e, t, o, p in rows] == [
        ("evt_g3", "payment_intent.processing", "received", "evt_g3"),
        ("evt_g1", "payment_intent.processing", "received", "evt_g1"),
        ("evt_g2", "payment_intent.processing", "received", "evt_g2"),
    ]
    assert [r.created for r in GatewayEventRecord.objects.order_by("id")] == [e.created for e in events]
    with django_capture_on_commit_callbacks(execute=True):
        assert inbound.gateway_events_store("stripe", [events[2], events[1]]) == ["duplicate", "duplicate"]
    assert scheduled == [in_a.schema_name]  # nothing stored: nothing scheduled
    assert GatewayEventRecord.objects.count() == 3


def method_event(method_id: str, *, event_id: str, type_: str, month: int, year: int, last4: str = "4242") -> dict:
    card = {"brand": "visa", "last4": last4, "exp_month": month, "exp_year": year}
    obj = {"id": method_id, "object": "payment_method", "type": "card", "card": card}
    return {"id": event_id, "object": "event", "type": type_, "created": int(time.time()), "data": {"object": obj}}


def test_a_renewed_default_card_moves_its_expiry_and_an_older_event_changes_nothing(
    world, connected, client_a, django_capture_on_commit_callbacks, monkeypatch
):
    """Stripe's card updater renews the default card: the payer's expiry (the card-expiry warnings
    read it) and label follow, audited, and dunning is told of an updated method after the commit;
    a stale event (an earlier expiry) and another organization's card change nothing."""
    payer = payer_with(world[0], connected, card="4242424242424242")
    told: list[int] = []
    monkeypatch.setattr("payments.services.methods.method_changed_hooks_run", told.append)
    method = payer.default_payment_method_id
    before = (payer.default_card_exp_month, payer.default_card_exp_year)
    year = before[1] + 3
    with django_capture_on_commit_callbacks(execute=True):
        outcome = delivered(
            client_a,
            *signed(
                method_event(
                    method,
                    event_id="evt_m1",
                    type_="payment_method.automatically_updated",
                    month=2,
                    year=year,
                    last4="1881",
                )
            ),
        )
    assert outcome == "applied"
    payer.refresh_from_db()
    assert (payer.default_card_exp_month, payer.default_card_exp_year, payer.default_method_label) == (
        2,
        year,
        "visa •••• 1881",
    )
    assert told == [world[0].pk]
    [entry] = LogEntry.objects.get_for_object(payer).filter(changes__event__1="payment_method.updated")
    assert entry.changes["expiry"] == [list(before), [2, year]]
    stale = method_event(method, event_id="evt_m0", type_="payment_method.updated", month=1, year=year)
    other = method_event("pm_not_a_default", event_id="evt_m2", type_="payment_method.updated", month=9, year=year + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert delivered(client_a, *signed(stale)) == "stale"
        assert delivered(client_a, *signed(other)) == "stale"
    payer.refresh_from_db()
    assert (payer.default_card_exp_month, payer.default_card_exp_year) == (2, year)
    assert told == [world[0].pk]
