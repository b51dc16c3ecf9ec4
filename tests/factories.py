from __future__ import annotations

import time
from decimal import Decimal

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.utils import timezone

from accounts.models import APIKey, User
from accounts.services.api_key import APIKeyCreated, apikey_create
from billing.models import Membership, Organization, Plan, PlanVersion, Subscription
from billing.periods import calendar_period_containing
from billing.services.subscription import subscription_create as billing_subscription_create

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

    @classmethod
    def _create(cls, model_class, *, name: str, scopes: list[str]) -> APIKeyCreated:
        return apikey_create(name=name, scopes=scopes, actor=None)


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


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.Sequence(lambda n: f"Plan {n}")
    currency = "USD"


class PlanVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlanVersion

    plan = factory.SubFactory(PlanFactory)
    version = 1
    base_fee = Decimal("49.00")


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
