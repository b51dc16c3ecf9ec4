"""Provision the demo tenant for `make run`: idempotent, prints how to sign in."""

from __future__ import annotations

import json
import secrets

import stripe
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.services.api_key import apikey_create
from accounts.services.user import member_user_create, staff_user_create
from billing.models import MemberRole, Membership, Organization, Plan, PlanVersion
from billing.periods import calendar_period_containing
from billing.services.organization import organization_create
from billing.services.plan import ChargeInput, VersionInput, plan_create
from billing.services.subscription import subscription_create
from core.errors import DomainError
from core.models import OutboxMessage, OutboxStatus
from core.services.outbox import outbox_process
from invoicing.models import Invoice, InvoiceStatus, InvoicingSettings
from invoicing.services.billing_run import billing_run
from invoicing.services.finalize import invoice_finalize
from metering.models import Meter
from metering.services.meter import meter_create
from payments.gateways.base import GatewayError
from payments.models import GatewaySettings, Payment
from payments.services.collection import COLLECT_KIND, collections_enqueue
from payments.services.methods import (
    payer_ensure,
    payment_method_default_set,
    payment_method_from_setup,
    payment_method_owned_get,
    payment_method_setup_start,
)
from tenants.models import Tenant
from tenants.services.tenant_provision import tenant_create

DEMO_SLUG = "demo"
DEMO_ORGS = [
    ("acme", "Acme Corp", "USD", "America/New_York", "US", "NY", "starter"),
    ("globex", "Globex GmbH", "EUR", "Europe/Berlin", "DE", "", "growth-eur"),
    ("initech", "Initech Ltd", "USD", "Europe/London", "GB", "", "growth"),
]
DEMO_METERS = [
    ("api_calls", "API calls", "api_call", "count", ""),
    ("data_gb", "Data transferred (GB)", "api_call", "sum", "gb"),
    ("active_users", "Active users", "login", "unique_count", "user"),
]
DEMO_PLANS = [
    ("starter", "Starter", "USD", "49.00"),
    ("growth", "Growth", "USD", "499.00"),
    ("growth-eur", "Growth (EUR)", "EUR", "459.00"),
]
# Stripe's test payment methods (https://docs.stripe.com/testing): the demo saves them through the
# gateway's setup flow as Stripe.js would, so no card number is typed anywhere. Acme's card pays;
# Initech's saves but declines on charge (Stripe's 4000 0000 0000 0341, `card_declined`).
DEMO_CARDS = [("acme", "pm_card_visa"), ("initech", "pm_card_chargeCustomerFail")]
# Keys localstripe accepts (any sk_test_/pk_test_ of dj-stripe's shape); used only when the
# tenant has no Stripe keys and STRIPE_API_BASE is a local fake (config.embedded's proxy).
DEMO_STRIPE_SECRET = "sk_test_" + "demo" * 6
DEMO_STRIPE_PUBLISHABLE = "pk_test_" + "demo" * 6

# Every demo plan charges API calls (graduated: the first 10,000 free) and data (per GB).
DEMO_CHARGES = [
    ChargeInput(
        meter="api_calls",
        price={
            "model": "graduated",
            "tiers": [
                {"up_to": "10000", "unit_amount": "0"},
                {"up_to": "1000000", "unit_amount": "0.0005"},
                {"up_to": None, "unit_amount": "0.0002"},
            ],
        },
    ),
    ChargeInput(meter="data_gb", price={"model": "per_unit", "unit_amount": "0.09"}),
]


class Command(BaseCommand):
    help = "Create the demo tenant (once) and print its sign-in details."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            self.stderr.write("demo_provision is for development only.")
            return
        path = settings.DATA_DIR / "demo-credentials.json"
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None or not path.exists():
            if tenant is None:
                tenant = tenant_create(name="Demo SaaS Inc.", slug=DEMO_SLUG, default_currency="USD").tenant
            with tenant_context(tenant):
                credentials = self._seed()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(credentials, indent=2))
            path.chmod(0o600)
        with tenant_context(tenant):
            self._meters()
            payments = self._payments()
        credentials = json.loads(path.read_text())
        base = f"http://{DEMO_SLUG}.{settings.TENANT_HOST_SUFFIX}:{options['port']}"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"Demo tenant ready at {base}/",
                    f"  staff login    {credentials['staff_email']} / {credentials['staff_password']}",
                    f"                 TOTP secret {credentials['staff_totp_secret']} (add it to an authenticator app,",
                    f"                 or print a code: .venv/bin/python manage.py totp_code --tenant {DEMO_SLUG} "
                    f"--email {credentials['staff_email']})",
                    f"  customer login {credentials['customer_email']} / {credentials['customer_password']}",
                    f"  API key        {credentials['api_key']}  (scopes ingest, read, write)",
                    f"  staff pages    {base}/staff/   admin {base}/admin/   API docs {base}/api/docs/",
                    f"  payments       {payments}",
                    f"  (credentials kept in {path})",
                    "",
                ]
            )
        )

    def _meters(self) -> None:
        for code, name, event_type, aggregation, value in DEMO_METERS:
            if not Meter.objects.filter(code=code).exists():
                meter_create(
                    actor=None,
                    code=code,
                    name=name,
                    event_type=event_type,
                    aggregation=aggregation,
                    value_property=value,
                )

    def _payments(self) -> str:
        """Stripe for the demo, on every start: localstripe starts empty each time (config.embedded),
        so the demo payers' customers and cards are made again through the real gateway code
        (payer_ensure makes a customer when the stored one is gone). Then Acme's and Initech's
        invoices are finalized and collected once, now, rather than by the worker
        later: the ledger shows one paid and one declined payment from the start."""
        if not settings.STRIPE_API_BASE.startswith("http://127.0.0.1"):
            return "Stripe: not seeded (STRIPE_API_BASE is not a local fake)"
        row = GatewaySettings.objects.first()
        if row is None or not row.stripe_ready:
            row = row or GatewaySettings()
            row.stripe_publishable_key = DEMO_STRIPE_PUBLISHABLE
            row.stripe_secret_key_set(DEMO_STRIPE_SECRET)
            row.save()
        states = []
        for external_id, test_method in DEMO_CARDS:
            org = Organization.objects.get(external_id=external_id)
            try:
                label = self._card_ensure(org, test_method)
            except (GatewayError, DomainError, stripe.StripeError) as error:
                states.append(f"{org.name}: no card ({error})")
                continue
            if not Payment.objects.filter(organization=org).exists():
                for invoice in Invoice.objects.filter(organization=org, status=InvoiceStatus.DRAFT):
                    try:
                        invoice_finalize(actor=None, invoice=invoice)  # enqueues its collection
                    except DomainError as error:
                        self.stderr.write(f"demo: {invoice} not finalized: {error}")
                # Invoices finalized before the card was saved (the first billing run) get the
                # collection finalizing would have enqueued, had the card been there.
                with transaction.atomic():
                    collections_enqueue(list(Invoice.objects.filter(organization=org, payments=None)))
            invoices = list(Invoice.objects.filter(organization=org).values_list("pk", flat=True))
            pending = OutboxMessage.objects.filter(
                kind=COLLECT_KIND, payload__invoice_id__in=invoices, status=OutboxStatus.PENDING
            )
            outbox_process(ids=list(pending.values_list("pk", flat=True)))
            last = Payment.objects.filter(organization=org).select_related("invoice").order_by("-pk").first()
            if last is None:
                states.append(f"{org.name}: {label}, no payment yet")
            else:
                failure = f" ({last.failure_code})" if last.failure_code else ""
                states.append(f"{org.name}: {label}, {last.invoice.number} {last.status}{failure}")
        return "; ".join(states)

    def _card_ensure(self, org: Organization, test_method: str) -> str:
        """The organization's default card at the gateway: kept when the gateway still holds it,
        else saved again through a SetupIntent confirmed as Stripe.js confirms it (publishable key,
        client secret, one of Stripe's test payment method ids) and made the default."""
        payer = payer_ensure(organization=org)
        if payer.default_payment_method_id:
            try:
                payment_method_owned_get(organization=org, payment_method_id=payer.default_payment_method_id)
                return payer.default_method_label
            except DomainError:
                pass  # a fresh localstripe: save it again
        session = payment_method_setup_start(organization=org, method_types=["card"])
        # The customer's part, done here with one of Stripe's test payment methods: confirming
        # the SetupIntent, as Stripe.js does in the browser (with the secret key: localstripe
        # refuses the SDK's publishable-key confirm, which Stripe.js sends in another shape).
        browser = stripe.StripeClient(
            GatewaySettings.objects.get().stripe_secret_key(),
            base_addresses={"api": settings.STRIPE_API_BASE},
            max_network_retries=0,
        )
        browser.v1.setup_intents.confirm(
            session.id, params={"payment_method": test_method, "client_secret": session.client_secret}
        )
        method = payment_method_from_setup(organization=org, setup_id=session.id)
        payer = payment_method_default_set(actor=None, organization=org, payment_method_id=method.id)
        return payer.default_method_label

    def _seed(self) -> dict:
        staff_email = f"owner@{DEMO_SLUG}.example"
        staff = User.objects.filter(email=staff_email).first()
        staff_password = secrets.token_urlsafe(9)
        if staff is None:
            staff = staff_user_create(email=staff_email, password=staff_password, role="owner", actor=None)
        else:
            staff.set_password(staff_password)
            staff.save(update_fields=["password"])
        totp_secret = generate_totp_secret()
        staff.authenticator_set.filter(type="totp").delete()
        TOTP.activate(staff, totp_secret)

        self._meters()
        plans = {}
        for code, name, currency, fee in DEMO_PLANS:
            if not Plan.objects.filter(code=code).exists():
                version = VersionInput(base_fee=fee, charges=DEMO_CHARGES)
                plan_create(actor=None, code=code, name=name, currency=currency, interval="month", version=version)
            plans[code] = PlanVersion.objects.filter(plan__code=code).order_by("-version").first()
        InvoicingSettings.objects.update_or_create(
            pk=1,
            defaults={
                "seller_name": "Demo SaaS Inc.",
                "seller_address": "1 Demo Street\nNew York, NY 10001",
                "seller_country": "US",
                "seller_region": "NY",
                "tax_registrations": ["US-NY"],
            },
        )

        now = timezone.now()
        customer_email = f"billing@acme.{DEMO_SLUG}.example"
        customer_password = secrets.token_urlsafe(9)
        customer = User.objects.filter(email=customer_email).first()
        if customer is None:
            customer = member_user_create(email=customer_email, password=customer_password, name="Ada Acme")
        else:
            customer.set_password(customer_password)
            customer.save(update_fields=["password"])
        for external_id, name, currency, tz, country, region, plan_code in DEMO_ORGS:
            org = Organization.objects.filter(external_id=external_id).first() or organization_create(
                actor=None,
                external_id=external_id,
                name=name,
                currency=currency,
                timezone=tz,
                country=country,
                region=region,
                billing_email=f"billing@{external_id}.{DEMO_SLUG}.example",
            )
            if not org.subscriptions.exists():
                start, _ = calendar_period_containing(instant=now, timezone=tz, interval="month")
                subscription_create(actor=None, organization=org, plan_version=plans[plan_code], start_at=start)
            if external_id == "acme":
                Membership.objects.get_or_create(user=customer, organization=org, defaults={"role": MemberRole.OWNER})
        api_key = apikey_create(name="Demo key", scopes=["ingest", "read", "write"], actor=staff)
        billing_run()  # this month's in-advance fees as drafts now, rather than at beat's first hourly run
        return {
            "staff_email": staff_email,
            "staff_password": staff_password,
            "staff_totp_secret": totp_secret,
            "customer_email": customer_email,
            "customer_password": customer_password,
            "api_key": api_key.secret,
        }
