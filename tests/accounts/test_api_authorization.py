"""Effective permission = credential scopes ∩ what the user may do (issue 9, items 2-4).

- An OAuth2 authorization-code token carries the user's power, never more than the client's scopes:
  a customer member consenting to a client with `write` still only reads their organizations.
- A staff role without a passed second factor has no staff power over the API (headless JWT or
  browser session): 403 `mfa_required`.
- The staff role matrix (accounts.backends) decides what staff may change over the API.
- Customer members do not see the catalogue: coupons, meters, inactive plans of others.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.conf import settings

from billing.models import Coupon, CouponRedemption, CreditEntry, Organization, Plan
from billing.services.coupon import coupon_create
from billing.services.plan import plan_update
from invoicing.models import Invoice, InvoiceStatus
from invoicing.services.billing_run import billing_run
from metering.models import Meter
from tests.factories import (
    MembershipFactory,
    MeterFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    totp_enable,
)
from tests.helpers import (
    bearer,
    jwt_login,
    jwt_login_mfa,
    oauth_authorization_code_token,
    oauth_client_create,
    staff_login,
    utc,
)


@pytest.fixture
def seller(in_a):
    """Acme on the Basic plan with an open April invoice; a 100 % forever coupon exists."""
    MeterFactory()
    PlanFactory(code="basic", name="Basic", currency="USD", base_fee="30.00", per_call=True)
    acme = OrganizationFactory(external_id="acme", currency="USD")
    SubscriptionFactory(organization=acme, at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 4, 2))
    coupon_create(
        actor=None,
        code="FREE",
        name="Free forever",
        discount_type="percentage",
        percent_off=Decimal(100),
        duration="forever",
    )
    return acme


class Snapshot:
    """Everything the refused requests below could write."""

    def __init__(self):
        self.before = self.take()

    @staticmethod
    def take():
        return {
            "organizations": list(Organization.objects.order_by("id").values()),
            "credits": CreditEntry.objects.count(),
            "invoices": list(Invoice.objects.order_by("id").values_list("id", "status", "amount_due")),
            "coupons": list(Coupon.objects.order_by("id").values()),
            "redemptions": CouponRedemption.objects.count(),
            "plans": list(Plan.objects.order_by("id").values()),
            "meters": list(Meter.objects.order_by("id").values()),
            "audit": LogEntry.objects.count(),
        }

    def unchanged(self) -> bool:
        return self.take() == self.before


def json_call(client, method: str, path: str, body: dict | None, token: str | None):
    extra = bearer(token) if token else {}
    return getattr(client, method)(path, body or {}, content_type="application/json", **extra)


def error(response):
    return response.status_code, response.json()["error"]["code"]


ATTACKS = [
    ("grant credit", "post", "/api/v1/organizations/acme/credits", {"amount": "1000.00", "kind": "promotional"}),
    ("mark invoice paid", "post", "/api/v1/invoices/{invoice}/mark-paid", {"reference": "wire"}),
    ("tax exempt", "patch", "/api/v1/organizations/acme", {"tax_exempt": True, "tax_exemption_reference": "x"}),
    (
        "create coupon",
        "post",
        "/api/v1/coupons",
        {"code": "MINE", "name": "Mine", "discount_type": "percentage", "percent_off": "100", "duration": "forever"},
    ),
    ("redeem coupon", "post", "/api/v1/organizations/acme/coupons", {"coupon": "FREE"}),
    ("rename plan", "patch", "/api/v1/plans/basic", {"name": "Hacked"}),
    ("patch meter", "patch", "/api/v1/meters/calls", {"name": "Hacked"}),
]


# -- item 2: authorization-code tokens ------------------------------------------------------------


@pytest.mark.django_db
def test_member_with_a_write_authorization_code_token_still_only_reads(seller, client_a):
    member = MembershipFactory(organization=seller).user
    oauth_client_create(client_id="crm-app", scopes=["read", "write"], grant_types=["authorization_code"])
    client_a.force_login(member)
    token = oauth_authorization_code_token(client_a, client_id="crm-app", scope="read write")
    client_a.logout()  # the token alone, as the third-party app would hold it
    invoice = Invoice.objects.get(status=InvoiceStatus.OPEN)

    assert client_a.get("/api/v1/organizations/acme", **bearer(token)).status_code == 200
    snapshot = Snapshot()
    for name, method, path, body in ATTACKS:
        response = json_call(client_a, method, path.format(invoice=invoice.pk), body, token)
        assert error(response) == (403, "permission_denied"), (name, response.content)
    assert snapshot.unchanged()


@pytest.mark.django_db
def test_staff_authorization_code_token_has_the_staff_role_power(seller, client_a):
    """The same kind of token in the hands of a support agent: what support may do, no more."""
    support = UserFactory(staff_role="support")
    secret = totp_enable(support)
    oauth_client_create(client_id="helpdesk", scopes=["read", "write"], grant_types=["authorization_code"])
    staff_login(client_a, email=support.email, totp_secret=secret)
    token = oauth_authorization_code_token(client_a, client_id="helpdesk", scope="read write")
    client_a.logout()

    renamed = json_call(client_a, "patch", "/api/v1/organizations/acme", {"name": "Acme Renamed"}, token)
    assert renamed.status_code == 200, renamed.content
    snapshot = Snapshot()
    response = json_call(client_a, "post", "/api/v1/organizations/acme/credits", {"amount": "5.00"}, token)
    assert error(response) == (403, "permission_denied")
    assert "support" in response.json()["error"]["message"]
    assert snapshot.unchanged()


@pytest.mark.django_db
def test_staff_must_pass_the_second_factor_before_authorizing_a_client(seller, client_a):
    """An authorization-code token of a staff user is only issued from a session that passed the
    second factor (the token itself cannot tell later)."""
    owner = UserFactory(staff_role="owner")
    totp_enable(owner)
    oauth_client_create(client_id="reports", scopes=["read", "write"], grant_types=["authorization_code"])
    client_a.force_login(owner)  # password only
    response = client_a.get(
        "/identity/o/authorize?response_type=code&client_id=reports"
        "&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&scope=read"
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/reauthenticate/?next=%2Fidentity%2Fo%2Fauthorize")


# -- item 3: staff without a passed second factor -------------------------------------------------


@pytest.mark.django_db
def test_staff_jwt_without_second_factor_has_no_staff_power(seller, client_a):
    owner = UserFactory(staff_role="owner")  # no authenticator: headless signs in with the password
    token = jwt_login(client_a, email=owner.email)
    snapshot = Snapshot()
    for method, path, body in (
        ("get", "/api/v1/organizations", None),
        ("post", "/api/v1/organizations/acme/credits", {"amount": "50.00"}),
        ("patch", "/api/v1/meters/calls", {"name": "x"}),
    ):
        response = json_call(client_a, method, path, body, token)
        assert error(response) == (403, "mfa_required"), (path, response.content)
        assert "/_allauth/app/v1/auth/2fa/authenticate" in response.json()["error"]["message"]
    assert snapshot.unchanged()


@pytest.mark.django_db
def test_staff_jwt_after_the_second_factor_works(seller, client_a):
    owner = UserFactory(staff_role="owner")
    token = jwt_login_mfa(client_a, email=owner.email, totp_secret=totp_enable(owner))
    response = json_call(client_a, "post", "/api/v1/organizations/acme/credits", {"amount": "50.00"}, token)
    assert response.status_code == 201, response.content
    assert CreditEntry.objects.get().amount == Decimal("50.00")


@pytest.mark.django_db
def test_staff_session_without_second_factor_has_no_staff_power(seller, client_a):
    admin = UserFactory(staff_role="admin")
    totp_enable(admin)
    client_a.force_login(admin)  # a browser session that never passed the second factor
    snapshot = Snapshot()
    response = json_call(client_a, "post", "/api/v1/organizations/acme/credits", {"amount": "50.00"}, None)
    assert error(response) == (403, "mfa_required")
    assert error(client_a.get("/api/v1/organizations")) == (403, "mfa_required")
    assert snapshot.unchanged()

    client_a.logout()
    staff_login(client_a, email=admin.email, totp_secret=_secret_of(admin))
    assert client_a.get("/api/v1/organizations").status_code == 200


def _secret_of(user) -> str:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP).data["secret"]


# -- item 4: the staff role matrix ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_role_matrix_decides_what_staff_change_over_the_api(seller, client_a):
    tokens = {}
    for role in ("finance", "support", "viewer"):
        user = UserFactory(staff_role=role)
        tokens[role] = jwt_login_mfa(client_a, email=user.email, totp_secret=totp_enable(user))
    meter = {"code": "gb", "name": "GB", "event_type": "transfer", "aggregation": "sum", "value_property": "gb"}
    coupon = {"code": "TEN", "name": "Ten", "discount_type": "percentage", "percent_off": "10", "duration": "once"}

    snapshot = Snapshot()
    refused = [
        ("support", "post", "/api/v1/organizations/acme/credits", {"amount": "5.00"}),
        ("support", "post", "/api/v1/coupons", coupon),
        ("support", "post", "/api/v1/meters", meter),
        ("support", "patch", "/api/v1/plans/basic", {"name": "X"}),
        ("finance", "post", "/api/v1/meters", meter),  # meters are owner/admin configuration
        ("finance", "patch", "/api/v1/meters/calls", {"name": "X"}),
        ("viewer", "patch", "/api/v1/organizations/acme", {"name": "X"}),
        ("viewer", "post", "/api/v1/organizations/acme/credits", {"amount": "5.00"}),
    ]
    for role, method, path, body in refused:
        response = json_call(client_a, method, path, body, tokens[role])
        assert error(response) == (403, "permission_denied"), (role, path, response.content)
        assert role in response.json()["error"]["message"]
    assert snapshot.unchanged()

    # and what the matrix allows goes through
    assert json_call(client_a, "post", "/api/v1/coupons", coupon, tokens["finance"]).status_code == 201
    credit = json_call(client_a, "post", "/api/v1/organizations/acme/credits", {"amount": "5.00"}, tokens["finance"])
    assert credit.status_code == 201
    renamed = json_call(client_a, "patch", "/api/v1/organizations/acme", {"name": "Acme 2"}, tokens["support"])
    assert renamed.status_code == 200
    assert client_a.get("/api/v1/meters", **bearer(tokens["viewer"])).status_code == 200


# -- the catalogue is not the customers' ----------------------------------------------------------


@pytest.mark.django_db
def test_members_see_no_coupons_meters_or_other_plans(seller, client_a):
    for code, active in (("legacy", False), ("secret-beta", False), ("pro", True)):
        PlanFactory(code=code, name=code, currency="USD", base_fee="1")
        if not active:
            plan_update(actor=None, plan=Plan.objects.get(code=code), is_active=False)
    # Acme's own plan is retired: its members still see it
    plan_update(actor=None, plan=Plan.objects.get(code="basic"), is_active=False)
    token = jwt_login(client_a, email=MembershipFactory(organization=seller).user.email)

    for path in ("/api/v1/coupons", "/api/v1/coupons/FREE", "/api/v1/meters", "/api/v1/meters/calls"):
        assert error(client_a.get(path, **bearer(token))) == (403, "permission_denied"), path
    listed = client_a.get("/api/v1/plans", **bearer(token)).json()["results"]
    assert [p["code"] for p in listed] == ["basic", "pro"]
    assert client_a.get("/api/v1/plans/basic", **bearer(token)).status_code == 200
    assert client_a.get("/api/v1/plans/basic/versions", **bearer(token)).status_code == 200
    for hidden in ("legacy", "secret-beta"):
        assert error(client_a.get(f"/api/v1/plans/{hidden}", **bearer(token))) == (404, "not_found")
        assert error(client_a.get(f"/api/v1/plans/{hidden}/versions", **bearer(token))) == (404, "not_found")


# -- OPTIONS ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_options_answers_the_allowed_methods_to_any_valid_credential(seller, client_a):
    token = jwt_login(client_a, email=MembershipFactory(organization=seller).user.email)
    for path, allowed in (
        ("/api/v1/organizations", "GET, POST, HEAD, OPTIONS"),
        ("/api/v1/coupons", "GET, POST, HEAD, OPTIONS"),
        ("/api/v1/invoices", "GET, HEAD, OPTIONS"),
    ):
        response = client_a.options(path, **bearer(token))
        assert response.status_code == 200, (path, response.content)
        assert response["Allow"] == allowed
        assert set(response.json()) <= {"name", "description", "renders", "parses", "actions"}
        assert "acme" not in response.content.decode() and "FREE" not in response.content.decode()
    assert error(client_a.options("/api/v1/organizations")) == (401, "not_authenticated")
    assert settings.REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"] == ["accounts.api.permissions.DenyAll"]
