"""Dunning against a scripted gateway: the `Gateway` interface implemented in memory, each method
declining or succeeding as the test says, swapped in where payments asks for the tenant's gateway
(a 90-day scenario of charges would take minutes against localstripe, and localstripe's cards
cannot decline once and succeed on the next try)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from core.models import OutboxMessage, OutboxStatus
from core.services.outbox import outbox_process
from core.services.webhook_endpoint import webhook_endpoint_create
from dunning.services.run import dunning_run
from payments.gateways.base import ChargeResult, ChargeStatus, Failure, FailureCode, PaymentMethodInfo
from payments.services.methods import payer_ensure, payment_method_default_set
from tests.invoicing.conftest import world  # noqa: F401  (the seller, plan and Acme)


class ScriptedGateway:
    """Charges answer from each method's script (a queue of outcomes, the last one repeating):
    "ok" or a FailureCode value."""

    def __init__(self):
        self.scripts: dict[str, deque[str]] = {}
        self.charges: dict[str, tuple[ChargeResult, str]] = {}
        self.confirms: list[tuple[str, str, str]] = []  # (method, amount, outcome)
        self.keys: set[str] = set()
        self.methods: dict[str, tuple[str, str]] = {}  # id → (type, "MM/YYYY"), when not a card without expiry

    def method(self, method_id: str, *outcomes: str, kind: str = "card", expires: str = "") -> str:
        self.scripts[method_id] = deque(outcomes)
        self.methods[method_id] = (kind, expires)
        return method_id

    def customer_ensure(self, *, customer_id, email, name, reference):
        return customer_id or f"cus_{reference}"

    def payment_methods_list(self, *, customer_id):
        return [
            PaymentMethodInfo(id=m, type=kind, label=f"visa •••• {m[-4:]}", expires=expires)
            for m, (kind, expires) in self.methods.items()
        ]

    def payment_method_detach(self, *, payment_method_id):
        self.methods.pop(payment_method_id, None)

    def charge_create(self, request):
        assert request.idempotency_key not in self.keys  # a new charge is a new key
        self.keys.add(request.idempotency_key)
        charge_id = f"pi_{len(self.charges) + 1}"
        result = ChargeResult(charge_id, ChargeStatus.CREATED, request.amount, request.payment_method_id)
        self.charges[charge_id] = (result, request.payment_method_id)
        return result

    def charge_confirm(self, *, charge_id, idempotency_key):
        created, method = self.charges[charge_id]
        script = self.scripts[method]
        outcome = script.popleft() if len(script) > 1 else script[0]
        self.confirms.append((method, str(created.amount.amount.quantize(Decimal("0.01"))), outcome))
        if outcome == "processing":  # a debit (SEPA): its outcome comes days later, by webhook
            result = ChargeResult(charge_id, ChargeStatus.PROCESSING, created.amount, method)
        elif outcome == "ok":
            result = ChargeResult(
                charge_id, ChargeStatus.SUCCEEDED, created.amount, method, charge_id=f"ch_{charge_id}"
            )
        else:
            failure = Failure(FailureCode(outcome), f"declined: {outcome}")
            result = ChargeResult(charge_id, ChargeStatus.FAILED, created.amount, method, failure=failure)
        self.charges[charge_id] = (result, method)
        return result

    def charge_get(self, *, charge_id):
        return self.charges[charge_id][0]


@pytest.fixture
def gateway(monkeypatch):
    fake = ScriptedGateway()
    monkeypatch.setattr("payments.services.collection.gateway_get", lambda name="stripe": fake)
    monkeypatch.setattr("payments.services.methods.gateway_get", lambda name="stripe": fake)
    return fake


def card_set(organization, gateway, method_id: str, *outcomes: str, kind: str = "card", expires: str = ""):
    gateway.method(method_id, *outcomes, kind=kind, expires=expires)
    payer_ensure(organization=organization)
    return payment_method_default_set(actor=None, organization=organization, payment_method_id=method_id)


@dataclass
class Clock:
    """The test clock: runs dunning at given instants (time-machine frozen there) and works the
    outbox as the worker would (collections first, then emails), logging what happened."""

    start: datetime
    log: list[tuple[int, str]] = field(default_factory=list)
    seen_events: int = 0

    def day(self, at: datetime) -> int:
        return int((at - self.start) / timedelta(days=1))

    def work_outbox(self, at: datetime) -> None:
        with time_machine.travel(at, tick=False):
            for kinds in (["payments.collect"], ["payments.receipt", "dunning.email", "dunning.card_expiry_email"]):
                ids = list(
                    OutboxMessage.objects.filter(kind__in=kinds, status=OutboxStatus.PENDING).values_list(
                        "pk", flat=True
                    )
                )
                if ids:
                    outbox_process(ids=ids)

    def run(self, at: datetime) -> None:
        with time_machine.travel(at, tick=False):
            dunning_run(at=at)
        self.work_outbox(at)

    def days(self, first: int, last: int, *, hours: tuple[int, ...] = (1, 2)) -> None:
        """Two runs a day (the hourly run's first two hours after the day begins)."""
        for d in range(first, last + 1):
            for h in hours:
                self.run(self.start + timedelta(days=d, hours=h))


def subjects() -> list[str]:
    return [m.subject for m in mail.outbox]


def events() -> list[str]:
    """The webhook event types emitted so far (one endpoint receives every event)."""
    return [
        m.payload["event"]["type"]
        for m in OutboxMessage.objects.filter(kind="webhook.deliver").order_by("id")
        if m.payload["event"]["type"].startswith(("dunning.", "subscription.suspended", "subscription.reactivated"))
    ]


@pytest.fixture
def endpoint(in_a):
    return webhook_endpoint_create(url="https://erp.example.com/hooks")


@pytest.fixture
def email_backend(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
