"""A Python client generated from the OpenAPI schema (openapi-python-client) drives the API end to
end against a real server: if the schema misdescribes a body, the generated models fail to build
or parse it.

The schema is generated from the code now (the committed docs/openapi.yaml is the same document,
tests/config/test_api_schema.py), the client generated from it into a temporary directory and
imported; uvicorn serves the ASGI app (tests.live) on a committed tenant, and the drainer moves the
ingested events into usage. The flow: meters, a plan, an organization, a subscription from the
start of the month, events, usage, the upcoming invoice, and a paginated list followed page by
page."""

from __future__ import annotations

import importlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context

from accounts.services.api_key import apikey_create
from invoicing.services.billing_run import billing_run
from tests.live import drain_all, web_server

pytestmark = [pytest.mark.usefixtures("django_db_setup"), pytest.mark.slow]

PACKAGE = "billing_api_client"
CONFIG = """\
post_hooks: []
content_type_overrides:
  application/pdf: application/octet-stream
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The generated client package, imported."""
    root = tmp_path_factory.mktemp("client")
    schema, config = root / "openapi.yaml", root / "config.yaml"
    call_command("spectacular", "--file", str(schema))
    config.write_text(CONFIG)
    generator = Path(sys.executable).parent / "openapi-python-client"
    generated = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(schema),
            "--meta",
            "none",
            "--output-path",
            str(root / PACKAGE),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # Anything the generator could not express would be missing from the client.
    assert "Warning" not in generated.stdout, generated.stdout
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _ok(response, status: int):
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.parsed


def test_a_generated_client_runs_the_billing_flow(api, committed_tenant, django_db_blocker):
    from billing_api_client import AuthenticatedClient
    from billing_api_client.api.events import events_ingest
    from billing_api_client.api.invoices import invoices_list, invoices_preview
    from billing_api_client.api.meters import meters_create, meters_list
    from billing_api_client.api.organizations import organizations_create
    from billing_api_client.api.plans import plans_create
    from billing_api_client.api.subscriptions import subscriptions_create, subscriptions_list
    from billing_api_client.api.usage import customers_usage_retrieve, usage_retrieve
    from billing_api_client.models import (
        AggregationEnum,
        ChargeRequest,
        EventBatchInRequest,
        EventInRequest,
        EventInRequestProperties,
        MeterRequest,
        OrganizationRequest,
        PlanInRequest,
        SubscriptionInRequest,
    )
    from billing_api_client.types import UNSET

    tenant, _ = committed_tenant
    with django_db_blocker.unblock(), schema_context(tenant.schema_name):
        key = apikey_create(name="client", scopes=["ingest", "read", "write"], actor=None).secret
    connection.set_schema_to_public()
    host = tenant.get_primary_domain().domain
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    with web_server() as base:
        client = AuthenticatedClient(base_url=base, token=key, headers={"Host": host}, timeout=30)

        calls = _ok(
            meters_create.sync_detailed(
                client=client,
                body=MeterRequest(
                    code="api_calls", name="API calls", event_type="api_call", aggregation=AggregationEnum.COUNT
                ),
            ),
            201,
        )
        gb = _ok(
            meters_create.sync_detailed(
                client=client,
                body=MeterRequest(
                    code="data_gb",
                    name="Data",
                    event_type="api_call",
                    aggregation=AggregationEnum.SUM,
                    value_property="gb",
                ),
            ),
            201,
        )
        assert (calls.code, gb.code, gb.aggregation, gb.value_property) == ("api_calls", "data_gb", "sum", "gb")

        plan = _ok(
            plans_create.sync_detailed(
                client=client,
                body=PlanInRequest(
                    code="growth",
                    name="Growth",
                    currency="USD",
                    base_fee="10.00",
                    charges=[
                        ChargeRequest(meter="api_calls", price={"model": "per_unit", "unit_amount": "0.50"}),
                        ChargeRequest(meter="data_gb", price={"model": "per_unit", "unit_amount": "2.00"}),
                    ],
                ),
            ),
            201,
        )
        version = plan.current_version
        assert (plan.code, plan.currency, version.version, version.base_fee) == ("growth", "USD", 1, "10")
        assert [(c.meter, c.price["unit_amount"]) for c in version.charges] == [
            ("api_calls", "0.50"),
            ("data_gb", "2.00"),
        ]

        organization = _ok(
            organizations_create.sync_detailed(
                client=client,
                body=OrganizationRequest(external_id="acme", name="Acme", currency="USD", timezone="UTC"),
            ),
            201,
        )
        assert (organization.external_id, organization.status) == ("acme", "active")

        subscription = _ok(
            subscriptions_create.sync_detailed(
                client=client,
                body=SubscriptionInRequest(customer="acme", plan="growth", start_at=month_start.isoformat()),
            ),
            201,
        )
        assert (subscription.customer, subscription.plan, subscription.plan_version) == ("acme", "growth", 1)
        assert subscription.current_period_start == month_start
        period_end = subscription.current_period_end

        events = [
            EventInRequest(
                id=f"evt-{n}",
                customer="acme",
                type_="api_call",
                properties=EventInRequestProperties.from_dict({"gb": gb_used}),
            )
            for n, gb_used in enumerate([0.25, 0.5, 0.75])
        ]
        accepted = _ok(events_ingest.sync_detailed(client=client, body=EventBatchInRequest(events=events)), 202)
        assert (accepted.accepted, accepted.rejected) == (3, [])
        # The same ids again: accepted at the door, counted once.
        again = _ok(events_ingest.sync_detailed(client=client, body=EventBatchInRequest(events=events[:1])), 202)
        assert again.accepted == 1
        drain_all()

        usage = _ok(usage_retrieve.sync_detailed(client=client, customer="acme", meter="data_gb"), 200)
        assert (usage.customer, usage.meter, usage.value) == ("acme", "data_gb", "1.5")
        assert (usage.from_, usage.to) == (month_start, period_end)
        every = _ok(customers_usage_retrieve.sync_detailed(client=client, external_id="acme"), 200)
        assert every.meters.to_dict() == {"api_calls": "3", "data_gb": "1.5"}

        # Nothing billed yet: the upcoming invoice is the first period's, its base fee in advance.
        first = _ok(invoices_preview.sync_detailed(client=client, customer="acme"), 200)
        [upcoming] = first.invoices
        assert (upcoming.subscription, upcoming.bill_point, upcoming.subtotal) == (
            subscription.id,
            month_start,
            "10.00",
        )
        assert [(line.kind, line.amount) for line in upcoming.lines] == [("base_fee", "10.00")]

        # The billing run (beat's, in production) bills that point; the next upcoming invoice is
        # the period's usage in arrears with the next base fee.
        with django_db_blocker.unblock(), schema_context(tenant.schema_name):
            billing_run(at=now)
        connection.set_schema_to_public()
        invoices = _ok(invoices_list.sync_detailed(client=client, customer="acme"), 200)
        [billed] = invoices.results
        assert (billed.subscription, billed.bill_point, billed.subtotal) == (subscription.id, month_start, "10.00")
        second = _ok(invoices_preview.sync_detailed(client=client, customer="acme"), 200)
        [upcoming] = second.invoices
        assert (upcoming.bill_point, upcoming.currency) == (period_end, "USD")
        assert [(line.kind, line.meter, line.quantity, line.amount) for line in upcoming.lines] == [
            ("usage", "api_calls", "3", "1.50"),
            ("usage", "data_gb", "1.5", "3.00"),
            ("base_fee", None, "1", "10.00"),
        ]
        assert (upcoming.subtotal, upcoming.lines[0].period_start, upcoming.lines[0].period_end) == (
            "14.50",
            month_start,
            period_end,
        )

        # Lists are cursor pages: one meter a page, followed to the end.
        codes, cursor = [], UNSET
        while True:
            page = _ok(meters_list.sync_detailed(client=client, limit=1, cursor=cursor), 200)
            codes += [meter.code for meter in page.results]
            if not page.next_:
                break
            cursor = parse_qs(urlsplit(page.next_).query)["cursor"][0]
        assert codes == ["api_calls", "data_gb"]
        listed = _ok(subscriptions_list.sync_detailed(client=client, customer="acme"), 200)
        assert ([s.id for s in listed.results], listed.next_, listed.previous) == ([subscription.id], None, None)
