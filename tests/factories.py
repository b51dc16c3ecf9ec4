from __future__ import annotations

import time
from contextlib import nullcontext
from datetime import datetime
from decimal import Decimal

import factory
import time_machine
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.utils import timezone

from accounts.models import APIKey, User
from accounts.services.api_key import APIKeyCreated, apikey_create
from billing.models import Membership, Organization, Plan, PlanVersion, Subscription
from billing.periods import calendar_period_containing
from billing.services.plan import ChargeInput, VersionInput, plan_create
from billing.services.subscription import subscription_create as billing_subscription_create
from metering.models import Meter
from metering.services.meter import meter_create

TENANT_SLUGS = ("alpha", "beta")
PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.django.Password(PASSWORD)
    staff_role = None

    @factory.post_generation
    def verified_email(obj, create, extracted, **kwargs):
        if create:
            EmailAddress.objects.create(user=obj, email=obj.email, primary=True, verified=True)


class APIKeyFactory(factory.django.DjangoModelFactory):
    """An API key through the service (its secret exists only in what the service returns):
    `APIKeyFactory(scopes=["ingest"]).secret`. Returns the service's APIKeyCreated."""

    class Meta:
        model = APIKey

    name = factory.Sequence(lambda n: f"key {n}")
    scopes = factory.LazyFunction(lambda: ["read", "write"])
    actor = None
    organization = None  # an organization's usage key (scopes ["read"])

    @classmethod
    def _create(cls, model_class, *, name: str, scopes: list[str], actor: User | None, organization) -> APIKeyCreated:
        return apikey_create(name=name, scopes=scopes, actor=actor, organization=organization)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    external_id = factory.Sequence(lambda n: f"org-{n}")
    name = factory.Sequence(lambda n: f"Organization {n}")
    currency = "USD"
    timezone = "UTC"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = "owner"


class MeterFactory(factory.django.DjangoModelFactory):
    """A meter through the service (validated, backfill and rule-cache hooks run). By default the
    count meter most tests price: `calls` counting `api_call` events; other fields pass through
    (`aggregation="sum", value_property="bytes"`, `group_by=[...]`, `filters=...`)."""

    class Meta:
        model = Meter

    code = "calls"
    name = "API calls"
    event_type = "api_call"
    aggregation = "count"
    actor = None

    @classmethod
    def _create(cls, model_class, *, actor: User | None, **fields) -> Meter:
        return meter_create(actor=actor, **fields)


PER_CALL = {"model": "per_unit", "unit_amount": "0.01"}


class PlanFactory(factory.django.DjangoModelFactory):
    """A plan with its version 1 through the service (a plan without a version cannot be
    subscribed to). The version's fields are the factory's: `base_fee`, `charges` (ChargeInput),
    `trial_days`, `base_fee_timing`, `minimum_commitment`. Trait `per_call`: 0.01 per event of the
    `calls` meter (MeterFactory's default)."""

    class Meta:
        model = Plan

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())
    currency = "USD"
    interval = "month"
    base_fee = "30.00"
    charges = factory.LazyFunction(list)
    actor = None

    class Params:
        per_call = factory.Trait(charges=factory.LazyFunction(lambda: [ChargeInput(meter="calls", price=PER_CALL)]))

    @classmethod
    def _create(
        cls, model_class, *, actor: User | None, code: str, name: str, currency: str, interval: str, **version
    ) -> Plan:
        return plan_create(
            actor=actor, code=code, name=name, currency=currency, interval=interval, version=VersionInput(**version)
        )


class PlanRowFactory(factory.django.DjangoModelFactory):
    """A bare plan row, for PlanVersionFactory (which makes the versions itself)."""

    class Meta:
        model = Plan

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.Sequence(lambda n: f"Plan {n}")
    currency = "USD"


class PlanVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlanVersion

    plan = factory.SubFactory(PlanRowFactory)
    version = 1
    base_fee = Decimal("49.00")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A subscription through the service. `plan_version` defaults to the version of the plan
    whose code is `plan`, or to the tenant's only plan version; `at` is the instant the service
    runs at (it reads the clock: the start defaults to then and must lie within a year of it)."""

    class Meta:
        model = Subscription

    organization = factory.SubFactory(OrganizationFactory)
    plan_version = None
    plan = None
    start_at = None
    billing_mode = "calendar"
    at = None
    actor = None

    @classmethod
    def _create(
        cls,
        model_class,
        *,
        plan_version: PlanVersion | None,
        plan: str | None,
        at: datetime | None,
        actor: User | None,
        **fields,
    ) -> Subscription:
        if plan_version is None:
            plan_version = PlanVersion.objects.get(**({"plan__code": plan} if plan else {}))
        with time_machine.travel(at, tick=False) if at else nullcontext():
            return billing_subscription_create(actor=actor, plan_version=plan_version, **fields)


def subscription_create(*, organization: Organization, plan_version: PlanVersion) -> Subscription:
    """A calendar subscription from the start of the current month, through the service."""
    start, _ = calendar_period_containing(instant=timezone.now(), timezone=organization.timezone, interval="month")
    return billing_subscription_create(actor=None, organization=organization, plan_version=plan_version, start_at=start)


def totp_enable(user: User) -> str:
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def totp_now(secret: str, *, offset: int = 0) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30 + offset))
