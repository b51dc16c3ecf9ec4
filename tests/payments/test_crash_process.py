"""SIGKILL of a real process between a charge request and the record of its answer, then a rerun
in a new process: one charge at the gateway, the invoice paid once. The collection runs in its own
Python process on committed data (core.faults kills it with SIGKILL at the fault point) against
localstripe through the test proxy, which counts the confirms that reached the gateway."""

from __future__ import annotations

import signal
import subprocess
import sys
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django_tenants.utils import schema_context

from billing.models import PlanVersion
from billing.services.plan import VersionInput, plan_create
from billing.services.subscription import subscription_create
from invoicing.models import Invoice, InvoicingSettings
from invoicing.services.billing_run import billing_run
from payments.models import GatewaySettings, Payment
from tests.factories import OrganizationFactory
from tests.invoicing.conftest import utc
from tests.live import ROOT, process_env
from tests.payments.conftest import CARD_OK, PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, payer_with

pytestmark = [pytest.mark.usefixtures("django_db_setup"), pytest.mark.slow]

COLLECT = """
import os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django_tenants.utils import schema_context
from payments.services.collection import invoice_collect
with schema_context(sys.argv[1]):
    payment = invoice_collect(invoice_id=int(sys.argv[2]))
    print(payment.status)
"""


def seed(schema: str, proxy) -> int:
    with schema_context(schema):
        InvoicingSettings.objects.update_or_create(pk=1, defaults={"seller_country": "DE", "tax_registrations": ["DE"]})
        plan_create(
            actor=None,
            code="basic",
            name="Basic",
            currency="EUR",
            interval="month",
            version=VersionInput(base_fee="30.00", charges=[]),
        )
        org = OrganizationFactory(external_id="acme", currency="EUR", country="DE")
        with time_machine.travel(utc(2027, 4, 1), tick=False):
            subscription_create(actor=None, organization=org, plan_version=PlanVersion.objects.get())
        row = GatewaySettings(stripe_publishable_key=PUBLISHABLE_KEY)
        row.stripe_secret_key_set(SECRET_KEY)
        row.stripe_webhook_secret_set(WEBHOOK_SECRET)
        row.save()
        payer_with(org, proxy, card=CARD_OK)
        billing_run(at=utc(2027, 4, 1))
        billing_run(at=utc(2027, 4, 2))
        invoice = Invoice.objects.get(organization=org)
        assert (invoice.status, invoice.amount_due) == ("open", Decimal("35.70"))
        return invoice.pk


def collect(schema: str, invoice_id: int, proxy, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", COLLECT, schema, str(invoice_id)],
        cwd=ROOT,
        env=process_env(STRIPE_API_BASE=proxy.url, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("point", ["payments.after_create", "payments.after_confirm"])
def test_sigkill_between_charge_and_record_then_rerun_charges_once(
    committed_tenant, django_db_blocker, fake_stripe, point
):
    tenant, _ = committed_tenant
    schema = tenant.schema_name
    with django_db_blocker.unblock():
        invoice_id = seed(schema, fake_stripe)
        connection.set_schema_to_public()
        killed = collect(schema, invoice_id, fake_stripe, BILLING_FAULT=f"{point}:1")
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        with schema_context(schema):
            payment = Payment.objects.get()
            assert payment.status == "pending" and payment.applied_at is None
            killed_steps = list(payment.attempts.values_list("step", "outcome"))
        assert fake_stripe.confirms() == (1 if point == "payments.after_confirm" else 0)
        again = collect(schema, invoice_id, fake_stripe)
        assert again.returncode == 0, again.stderr[-3000:]
        assert again.stdout.strip() == "succeeded"
        with schema_context(schema):
            payment = Payment.objects.get()
            steps = list(payment.attempts.values_list("step", "outcome"))
            invoice = Invoice.objects.get(pk=invoice_id)
            paid = (invoice.status, invoice.amount_paid, payment.status, payment.settled_invoice)
        connection.set_schema_to_public()
    assert fake_stripe.confirms() == 1  # the one charge
    assert fake_stripe.requests["POST /v1/payment_intents"] == 1  # one intent: the key replayed the first
    assert paid == ("paid", Decimal("35.70"), "succeeded", True)
    if point == "payments.after_confirm":
        assert killed_steps == [("create", "done"), ("confirm", "started")]
        assert steps == [("create", "done"), ("confirm", "started"), ("recover", "done")]
    else:
        assert killed_steps == [("create", "started")]
        assert steps == [("create", "started"), ("create", "done"), ("confirm", "done")]
