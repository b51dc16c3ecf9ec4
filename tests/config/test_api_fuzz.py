"""The API's fuzz guard (issue 9).

1. Every write endpoint of the OpenAPI schema (the document /api/schema/ serves), and every read
   endpoint that declares query parameters, is fuzzed by schemathesis from its schema: valid and
   schema-violating cases, with the path naming real resources and generated ones.
2. The poison corpus goes to every write endpoint (in every field of a valid body, and as whole
   bodies: nested 10,000 deep, empty, not JSON, not UTF-8, over the size limit, other content
   types), and to every query and path parameter of every endpoint: NUL characters, lone
   surrogates, 1e400, "NaN", "Infinity", "-0", huge integers, non-ASCII digits, dates past year
   9999, 1 MB strings, wrong types.

For every answer: never a 5xx; every 4xx is JSON `{"error": {"code": str, "message": str}}`; its
status is one the operation declares and its body is what the schema says for that status (the
typed contract, issue 10); a refused request, and any preview, leaves every billing, metering,
invoicing and audit table as it was (row counts). 3. Every read, on real resources, answers 200
with the body its schema describes. A write endpoint added later is fuzzed without a change here, and the poison
test fails until it has a valid body in BASE_BODIES (or is listed in NO_BODY).

Derandomized (a failure reproduces) and sized for CI; `pytest -s` prints the case counts."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
import schemathesis
import time_machine
from auditlog.models import LogEntry
from django.apps import apps
from django.db import connection
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response as SchemathesisResponse

from billing.services.coupon import coupon_create, coupon_redeem
from billing.services.credit import credit_grant
from core.models import WebhookDelivery
from core.services.webhook_endpoint import webhook_endpoint_create
from invoicing.models import Invoice, InvoicingSettings
from invoicing.services.billing_run import billing_run
from invoicing.services.invoice import CreditNoteLineInput, credit_note_create
from payments.models import Payment, PaymentStatus
from tests.factories import APIKeyFactory, MeterFactory, OrganizationFactory, PlanFactory, SubscriptionFactory
from tests.helpers import bearer, utc

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_EXAMPLES = 25  # schemathesis cases per endpoint


@cache
def operations() -> dict[str, Any]:
    """ "METHOD /path/{param}" -> schemathesis operation, from the schema /api/schema/ serves."""
    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    schema = schemathesis.openapi.from_dict(document)
    return {f"{op.method.upper()} {op.path}": op for op in (result.ok() for result in schema.get_all_operations())}


def _is_write(label: str) -> bool:
    return label.split()[0] in WRITE_METHODS


FUZZED = [label for label, op in operations().items() if _is_write(label) or list(op.query)]
WRITES = [label for label in operations() if _is_write(label)]


# ---------------------------------------------------------------------------------------------
# The world every request runs against: one of each resource a path can name.


@dataclass
class World:
    client: Client
    key: str
    ids: dict[str, str]
    tables: list[str]
    sent: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def path_parameters(self, template: str) -> dict[str, str]:
        """Real resources for a path's parameters: a `{code}` after /coupons is the coupon's."""
        segments = template.strip("/").split("/")
        return {
            segment[1:-1]: self.ids["organizations" if segment == "{external_id}" else segments[index - 1]]
            for index, segment in enumerate(segments)
            if segment.startswith("{")
        }

    def counts(self) -> tuple[int, ...]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(f'(SELECT count(*) FROM "{table}")' for table in self.tables))
            return tuple(cursor.fetchone())

    def send(
        self,
        label: str,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One request, checked (module docstring)."""
        what = f"{method} {path}{'?' + query if query else ''} body={body[:200] if body else body!r}"
        before = self.counts()
        url = f"{path}?{query}" if query else path
        extra = {**(headers or {}), **bearer(self.key)}
        if body is None:
            response = self.client.generic(method, url, **extra)
        else:
            response = self.client.generic(method, url, body, content_type=content_type, **extra)
        status = response.status_code
        self.sent[label][status] += 1
        assert status < 500, f"{what}: {status} {response.content[:300]!r}"
        if status >= 400:
            assert response["Content-Type"] == "application/json", f"{what}: {status} {response['Content-Type']}"
            error = json.loads(response.content)["error"]
            assert isinstance(error["code"], str) and error["code"], what
            assert isinstance(error["message"], str) and error["message"], what
        conforms(label, method, url, response)
        if status >= 400 or "/preview" in path:
            assert self.counts() == before, f"{what}: answered {status} and wrote"
        return response


def conforms(label: str, method: str, url: str, response) -> None:
    """The answer's status is one `label` declares, and its body is what the schema says for it."""
    operation = operations()[label]
    status = response.status_code
    declared = sorted(operation.definition.raw["responses"])
    assert str(status) in declared, f"{label}: answered {status}, the schema declares {declared}"
    if response.streaming:
        return  # the PDF: a file, not a JSON body
    answer = SchemathesisResponse(
        status_code=status,
        headers={name.lower(): [value] for name, value in response.items()},
        content=response.content,
        request=requests.Request(method, f"http://testserver{url}").prepare(),
        elapsed=0.0,
        verify=True,
    )
    try:
        operation.validate_response(answer)
    except FailureGroup as exc:  # the mismatches, readable
        found = "\n".join(getattr(failure, "message", str(failure)) for failure in exc.exceptions)
        raise AssertionError(f"{label} {url}: {status} does not match the schema:\n{found}") from None


D = Decimal


@pytest.fixture
def world(in_a, tenant_a) -> Iterator[World]:
    # Ten days into the subscription's first period, so changes, cancellations and credit notes
    # are possible and the fuzz reaches the services, not only the refusals.
    with time_machine.travel(utc(2027, 4, 10, 12), tick=True):
        yield _world(tenant_a)


def _world(tenant_a) -> World:
    InvoicingSettings.objects.update_or_create(
        pk=1, defaults={"seller_country": "DE", "tax_registrations": ["DE"], "seller_name": "Seller GmbH"}
    )
    MeterFactory()
    PlanFactory(code="basic", name="Basic", currency="EUR", base_fee="30.00", per_call=True)
    PlanFactory(code="pro", name="Pro", currency="EUR", base_fee="90.00")
    org = OrganizationFactory(external_id="acme", currency="EUR", country="DE", name="Acme GmbH")
    subscription = SubscriptionFactory(organization=org, plan="basic", at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 4, 2))
    invoice = Invoice.objects.get(organization=org, bill_point=utc(2027, 4, 1))
    line = invoice.lines.order_by("position").first()
    note = credit_note_create(
        actor=None, invoice=invoice, reason="goodwill", lines=[CreditNoteLineInput(line.pk, D("1.00"))]
    )
    coupon = coupon_create(
        actor=None, code="SPRING", name="Spring", discount_type="percentage", percent_off="20", duration="once"
    )
    coupon_redeem(actor=None, coupon=coupon, organization=org)
    grant = credit_grant(actor=None, organization=org, amount=D("10.00"), currency="EUR")
    endpoint = webhook_endpoint_create(url="http://127.0.0.1:9/hooks", event_types=["invoice.paid"]).endpoint
    delivery = WebhookDelivery.objects.create(
        message_id=1, endpoint=endpoint, event_type="invoice.paid", attempt=1, attempted_at=utc(2027, 4, 10)
    )
    payment = Payment.objects.create(
        invoice=invoice,
        organization=org,
        number=1,
        idempotency_key=f"inv{invoice.pk}-1",
        gateway="stripe",
        amount=D("10.00"),
        currency="EUR",
        status=PaymentStatus.FAILED,
    )
    apps_checked = ("billing", "metering", "invoicing", "payments")
    models = [m for app in apps_checked for m in apps.get_app_config(app).get_models()]
    return World(
        client=Client(HTTP_HOST=tenant_a.get_primary_domain().domain, raise_request_exception=False),
        key=APIKeyFactory(name="fuzz", scopes=["read", "write", "ingest"]).secret,
        ids={
            "organizations": "acme",
            "coupons": "SPRING",
            "meters": "calls",
            "plans": "basic",
            "subscriptions": str(subscription.pk),
            "invoices": str(invoice.pk),
            "credit-notes": str(note.pk),
            "payments": str(payment.pk),
            "credits": str(grant.pk),
            "line": str(line.pk),
            "webhook-endpoints": str(endpoint.pk),
            "deliveries": str(delivery.pk),
        },
        tables=sorted({m._meta.db_table for m in models} | {LogEntry._meta.db_table}),
    )


def _report(world: World, title: str) -> None:
    total = sum(sum(statuses.values()) for statuses in world.sent.values())
    print(f"\n{title}: {total} requests")
    for label, statuses in sorted(world.sent.items()):
        answers = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
        print(f"  {sum(statuses.values()):5d}  {label}  ({answers})")


# ---------------------------------------------------------------------------------------------
# 1. schemathesis


def _case_request(case) -> tuple[str, str, bytes | None, str]:
    """The request schemathesis would send for `case` (its own serialization through requests),
    as path, query string, body and content type for Django's test client."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    kwargs.pop("cookies", None)
    prepared = requests.Request(**kwargs).prepare()
    url = urlsplit(prepared.url)
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    return url.path, url.query, body, prepared.headers.get("Content-Type", "application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("label", FUZZED)
def test_schema_fuzz_never_fails_and_refusals_write_nothing(world, label):
    operation = operations()[label]
    known = world.path_parameters(operation.path)
    strategies = [operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known)]
    strategies.append(operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=known))
    if known:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE))
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def run(case):
        path, query, body, content_type = _case_request(case)
        world.send(label, case.method.upper(), path, query=query, body=body, content_type=content_type)

    run()
    _report(world, f"schemathesis {label}")


# ---------------------------------------------------------------------------------------------
# 2. The poison corpus

_GRADUATED = {
    "model": "graduated",
    "tiers": [{"up_to": "100", "unit_amount": "0.1"}, {"up_to": None, "unit_amount": "0"}],
}
# A valid body for each write endpoint; the poison replaces one value at a time, at every depth.
BASE_BODIES: dict[str, Callable[[World], Any]] = {
    "POST /api/v1/events": lambda w: {
        "events": [
            {
                "id": "evt-fuzz-1",
                "customer": "acme",
                "type": "api_call",
                "timestamp": "2027-04-10T11:00:00Z",
                "properties": {"region": "eu", "gb": 0.5},
            }
        ]
    },
    "POST /api/v1/organizations": lambda w: {
        "external_id": "new-org",
        "name": "New",
        "currency": "EUR",
        "country": "DE",
        "timezone": "Europe/Berlin",
        "billing_email": "ap@new.example",
        "metadata": {"crm": "42"},
    },
    "PUT /api/v1/organizations/{external_id}": lambda w: {
        "name": "Acme",
        "currency": "EUR",
        "country": "DE",
        "timezone": "Europe/Berlin",
        "tax_id": "DE123",
    },
    "PATCH /api/v1/organizations/{external_id}": lambda w: {"name": "Acme AG", "metadata": {"crm": "42"}},
    "POST /api/v1/meters": lambda w: {
        "code": "tokens",
        "name": "Tokens",
        "event_type": "llm",
        "aggregation": "sum",
        "value_property": "tokens",
        "filters": [{"property": "model", "operator": "in", "values": ["a", "b"]}],
        "group_by": ["model"],
    },
    "PUT /api/v1/meters/{code}": lambda w: {"name": "Calls", "event_type": "api_call", "aggregation": "count"},
    "PATCH /api/v1/meters/{code}": lambda w: {"name": "Calls"},
    "POST /api/v1/plans": lambda w: {
        "code": "growth",
        "name": "Growth",
        "currency": "EUR",
        "interval": "month",
        "base_fee": "50.00",
        "trial_days": 14,
        "minimum_commitment": "60.00",
        "charges": [{"meter": "calls", "price": _GRADUATED}],
    },
    "PATCH /api/v1/plans/{code}": lambda w: {"name": "Basic", "description": "The basic plan", "is_active": True},
    "POST /api/v1/plans/{code}/versions": lambda w: {
        "base_fee": "31.00",
        "charges": [{"meter": "calls", "price": _GRADUATED}],
    },
    "PUT /api/v1/dunning/policy": lambda w: {
        "retry_days": [1, 3, 5],
        "retry_hard_declines": False,
        "retry_on_method_change": True,
        "plan_changes_blocked_day": 10,
        "suspend_day": 14,
        "final_day": 30,
        "final_action": "cancel_at_period_end",
        "email_days": [0, 3, 7],
        "pre_due_reminder_days": None,
    },
    "PUT /api/v1/plans/{code}/limits": lambda w: {"limits": [{"meter": "calls", "limit": "1000"}]},
    "POST /api/v1/subscriptions": lambda w: {
        "customer": "acme",
        "plan": "pro",
        "plan_version": 1,
        "start_at": "2027-06-01T00:00:00Z",
        "billing_mode": "calendar",
    },
    "POST /api/v1/subscriptions/{id}/cancel": lambda w: {"at_period_end": True},
    "POST /api/v1/subscriptions/{id}/cancel/preview": lambda w: {"at_period_end": False},
    "POST /api/v1/subscriptions/{id}/change-plan": lambda w: {"plan": "pro", "plan_version": 1, "timing": "now"},
    "POST /api/v1/subscriptions/{id}/change-plan/preview": lambda w: {"plan": "pro", "timing": "period_end"},
    "POST /api/v1/coupons": lambda w: {
        "code": "WELCOME",
        "name": "Welcome",
        "discount_type": "fixed",
        "amount_off": "5.00",
        "currency": "EUR",
        "duration": "repeating",
        "duration_periods": 3,
        "applies_to": "charges",
        "meter_codes": ["calls"],
        "max_redemptions": 10,
        "redeem_by": "2028-01-01T00:00:00Z",
    },
    "PATCH /api/v1/coupons/{code}": lambda w: {
        "name": "Spring",
        "is_active": True,
        "max_redemptions": 5,
        "redeem_by": "2028-01-01T00:00:00+02:00",
    },
    "POST /api/v1/organizations/{external_id}/coupons": lambda w: {"coupon": "SPRING"},
    "POST /api/v1/organizations/{external_id}/credits": lambda w: {
        "amount": "5.00",
        "currency": "EUR",
        "kind": "purchase",
        "expires_at": "2028-01-01T00:00:00Z",
        "description": "prepaid",
    },
    "POST /api/v1/organizations/{external_id}/credits/{id}/void": lambda w: {"description": "mistake"},
    "POST /api/v1/invoices/{id}/credit-notes": lambda w: {
        "reason": "refund",
        "lines": [{"line": int(w.ids["line"]), "amount": "2.00"}],
    },
    "POST /api/v1/invoices/{id}/mark-paid": lambda w: {"reference": "wire 2027-04-10"},
    "POST /api/v1/payments/{id}/refunds": lambda w: {"amount": "1.00", "reason": "goodwill"},
    "POST /api/v1/webhook-endpoints": lambda w: {
        "url": "http://127.0.0.1:9/new",
        "description": "ops",
        "event_types": ["invoice.paid", "invoice.voided"],
    },
    "PATCH /api/v1/webhook-endpoints/{id}": lambda w: {"description": "renamed", "enabled": True},
    "POST /api/v1/webhook-endpoints/{id}/rotate-secret": lambda w: {"overlap_hours": 24},
}
NO_BODY = {
    "DELETE /api/v1/organizations/{external_id}",
    "DELETE /api/v1/meters/{code}",
    "DELETE /api/v1/organizations/{external_id}/coupons/{code}",
    "POST /api/v1/subscriptions/{id}/resume",
    "POST /api/v1/invoices/{id}/finalize",
    "POST /api/v1/invoices/{id}/void",
    "POST /api/v1/invoices/{id}/mark-uncollectible",
    "POST /api/v1/invoices/{id}/pay",
    "DELETE /api/v1/webhook-endpoints/{id}",
    "POST /api/v1/webhook-endpoints/{id}/deliveries/{delivery}/replay",
}

# JSON tokens json.dumps cannot write: the value is replaced by the raw token in the body text.
_RAW = {"__raw_1e400__": "1e400", "__raw_-1e400__": "-1e400", "__raw_deep__": "[" * 100 + "]" * 100}
POISON_VALUES: list[Any] = [
    "a\x00b",
    "\ud800",
    "\u0661\u0660\u0660",  # Arabic-Indic digits: 100 to Decimal()
    "1e999999",
    "1e400",
    "NaN",
    "Infinity",
    "-0",
    "-1",
    "0.5",
    "99999999999999999999999999",
    "9999-12-31T23:59:59+14:00",
    "99999-01-01T00:00:00Z",
    "x" * 1_000_000,
    "",
    "__raw_1e400__",
    "__raw_-1e400__",
    "__raw_deep__",
    2**31 - 1,
    2**63,
    -(2**63) - 1,
    10**100,
    0.5,
    -0.0,
    True,
    None,
    [],
    {},
    [None],
    {"\x00": 1},
]
# Inside nested values (a charge's price, a credit note's lines) a smaller set, to stay quick.
POISON_NESTED: list[Any] = [
    "a\x00b",
    "\ud800",
    "\u0661\u0660\u0660",
    "1e999999",
    "NaN",
    "-0",
    "99999999999999999999999999",
    "9999-12-31T23:59:59+14:00",
    "__raw_1e400__",
    2**63,
    None,
    {},
]
# Whole bodies: (content type, bytes).
_DEEP = 10_000
POISON_BODIES: list[tuple[str, bytes]] = [
    ("application/json", b"[" * _DEEP + b"]" * _DEEP),
    ("application/json", b'{"a":' * _DEEP + b"1" + b"}" * _DEEP),
    ("application/json", b""),
    ("application/json", b"null"),
    ("application/json", b"[]"),
    ("application/json", b"123"),
    ("application/json", b'"\\u0000"'),
    ("application/json", b"{not json"),
    ("application/json", b'{"a": NaN}'),
    ("application/json", b'{"a": Infinity}'),
    ("application/json", b'{"a": 1e400}'),
    ("application/json", b'{"a": ' + b"9" * 5000 + b"}"),
    ("application/json", b'{"a": "\xff\xfe"}'),
    ("application/json", b"\xef\xbb\xbf{}"),
    ("application/json", b'{"a": "' + b"x" * (6 * 1024 * 1024) + b'"}'),
    ("text/plain", b'{"name": "x"}'),
    ("application/x-www-form-urlencoded", b"name=x&code=y"),
    ("multipart/form-data; boundary=xyz", b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--xyz--\r\n'),
    ("", b"{}"),
]

# Request headers that reach the audit trail (request id, forwarded address and port).
POISON_HEADERS = [
    {"HTTP_X_REQUEST_ID": "r" * 300, "HTTP_X_FORWARDED_FOR": "garbage", "HTTP_X_FORWARDED_PORT": "99999999999"},
    {"HTTP_X_REQUEST_ID": "a b\tc", "HTTP_X_FORWARDED_FOR": "999.1.1.1, x", "HTTP_X_FORWARDED_PORT": "-5"},
]


def _leaf_paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every position in a body, containers included (the body itself excluded)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaf_paths(item, (*path, index))


def _replaced(body: Any, path: tuple, value: Any) -> Any:
    body = json.loads(json.dumps(body))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def _encode(body: Any) -> bytes:
    text = json.dumps(body)
    for marker, token in _RAW.items():
        text = text.replace(json.dumps(marker), token)
    return text.encode()


@pytest.mark.django_db
def test_every_write_endpoint_has_a_body_for_the_poison_corpus():
    assert set(WRITES) == set(BASE_BODIES) | NO_BODY


@pytest.mark.django_db
@pytest.mark.parametrize("label", WRITES)
def test_poison_bodies_never_fail_and_write_nothing_when_refused(world, label):
    method, template = label.split(" ", 1)
    path = template.format(**world.path_parameters(template))
    base = BASE_BODIES[label](world) if label in BASE_BODIES else {}
    for content_type, raw in POISON_BODIES:
        world.send(label, method, path, body=raw, content_type=content_type)
    for position in _leaf_paths(base):
        for value in POISON_VALUES if len(position) == 1 else POISON_NESTED:
            world.send(label, method, path, body=_encode(_replaced(base, position, value)))
    # Unknown fields carrying the poison.
    for value in POISON_VALUES:
        world.send(label, method, path, body=_encode({**base, "\x00": value, "extra\ud800": value}))
    # The valid body itself last (it may be accepted), with headers the audit trail stores.
    for headers in POISON_HEADERS:
        world.send(label, method, path, body=_encode(base), headers=headers)
    _report(world, f"poison bodies {label}")


_QUERY_POISON = [
    "%00",
    "a%00b",
    "%ED%A0%80",
    "%D9%A1%D9%A0%D9%A0",
    "99999-01-01T00:00:00Z",
    "9999-12-31T23:59:59%2B14:00",
    "1e400",
    "NaN",
    "-1",
    "0",
    str(2**64),
    "x" * 5000,
    "%FF%FE",
    "",
    "%25",
    "true",
]
_PATH_POISON = [
    "%00",
    "a%00b",
    "%ED%A0%80",
    "%D9%A1%D9%A0%D9%A0",
    str(2**64),
    "-1",
    "0",
    "1e400",
    "NaN",
    "x" * 300,
    "%FF",
    "%2E%2E",
    "a%2Fb",
    "%20",
]
WITH_PARAMETERS = [label for label, op in operations().items() if list(op.query) or list(op.path_parameters)]


@pytest.mark.django_db
def test_poison_query_and_path_parameters_never_fail(world):
    """Every endpoint: each query parameter it declares and each path parameter, poisoned (plus a
    NUL in an undeclared parameter's name and value)."""
    for label in WITH_PARAMETERS:
        operation = operations()[label]
        method, template = label.split(" ", 1)
        known = world.path_parameters(template)
        path = template.format(**known)
        query_names = [p.name for p in operation.query]
        for name in query_names:
            for value in _QUERY_POISON:
                world.send(label, method, path, query=f"{quote(name)}={value}")
        world.send(label, method, path, query="%00=1&x=%00")
        for name in known:
            for value in _PATH_POISON:
                world.send(label, method, template.format(**{**known, name: value}))
    _report(world, "poison query and path parameters")


# ---------------------------------------------------------------------------------------------
# 3. The contract on real answers: every read, on the world's resources

READS = [label for label in operations() if label.startswith("GET ")]
READ_QUERIES = {
    "GET /api/v1/usage": "customer=acme&meter=calls&group_by=true&window=day",
    "GET /api/v1/invoices/preview": "customer=acme",
}


@pytest.mark.django_db
def test_every_read_answers_its_schema_on_real_resources(world):
    for label in READS:
        method, template = label.split(" ", 1)
        path = template.format(**world.path_parameters(template))
        response = world.send(label, method, path, query=READ_QUERIES.get(label, ""))
        assert response.status_code == 200, f"{label}: {response.status_code} {response.content[:300]!r}"
    assert len(world.sent) == len(READS) >= 20
