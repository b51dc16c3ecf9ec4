"""Provision the demo tenant for `make run`: idempotent, prints how to sign in."""

from __future__ import annotations

import json
import secrets

from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from django.core.management.base import BaseCommand
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
from invoicing.models import InvoicingSettings
from invoicing.services.billing_run import billing_run
from metering.models import Meter
from metering.services.meter import meter_create
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
