"""The authorization matrix (issue 9, "Guards"): every route of the tenant URL configuration under
/api/, the staff pages, the admin index and the usage websocket, times every method its view answers, times
every kind of principal, against the explicit table `ROWS` below. A route (or method) without a
row fails `test_every_route_and_method_has_a_row`, so a new endpoint cannot ship unexamined.

What the table states, per (route, method):
- `ok`: the status an allowed caller gets. Requests carry bodies and targets chosen so that an
  allowed write is refused *after* the permission check (400 validation, 404, 409 state): that
  status proves access was granted, and nothing is ever written. "Allowed" therefore means "the
  exact `ok` status", never 401/403.
- `machine`: the one credential scope (API keys, OAuth2 client credentials) that may call it.
- `staff`: the staff roles that may call it, with a session or JWT that passed the second factor.
- `members`: customer members may call it (their own organization); `other` is what a member of
  another organization gets (404 for another's object, 200 for a list that shows only their own).
- `org_key`: an organization's usage key (made in the portal, APIKey.organization) may call it;
  Acme's key gets `ok`, Globex's key gets `other`. Everywhere else such a key is 403.

Every other principal is refused: anonymous and another tenant's credentials 401; staff without a
passed second factor 403 `mfa_required`; everyone else 403 `permission_denied`. The websocket
accepts only a member's browser session (4401 otherwise, 4403 for staff without the second
factor); the staff pages answer only staff sessions that passed it. After every request the test
checks that no row of the tenant's schema was inserted, updated or deleted (sessions and API keys'
last use aside), so neither a refused nor an allowed request wrote anything.

HEAD and OPTIONS are checked for every API route in `test_head_and_options_answer_every_api_route`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django_tenants.utils import tenant_context

from billing.services.coupon import coupon_create
from billing.services.credit import credit_grant
from billing.services.organization import organization_close
from invoicing.models import Invoice, InvoiceStatus
from invoicing.services.billing_run import billing_run
from invoicing.services.invoice import CreditNoteLineInput, credit_note_create
from payments.models import Payment, PaymentStatus
from tests.factories import (
    APIKeyFactory,
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
    oauth_client_credentials_token,
    staff_login,
    utc,
)

ROLES = ("owner", "admin", "finance", "support", "viewer")
EVERY_ROLE = frozenset(ROLES)
ORGANIZATION_WRITERS = frozenset({"owner", "admin", "finance", "support"})
BILLING_WRITERS = frozenset({"owner", "admin", "finance"})  # plans, coupons, credit, subscriptions, invoices
OWNERS = frozenset({"owner", "admin"})  # meters: the seller's integration, not finance's


@dataclass(frozen=True)
class Row:
    ok: int
    machine: str | None = None
    staff: frozenset[str] = frozenset()
    members: bool = False
    other: int | None = None  # a member of another organization, when `members`
    org_key: bool = False  # an organization's usage key (its own organization: `ok`, another's: `other`)
    kwargs: dict = field(default_factory=dict)  # path arguments, by name of an object in `world`
    query: str = ""
    body: dict | None = None
    kind: str = "api"  # "api" | "public" | "staff_page" | "events" | "websocket"


def api_read(ok=200, *, members=False, other=None, **kw) -> Row:
    return Row(ok=ok, machine="read", staff=EVERY_ROLE, members=members, other=other, **kw)


def api_write(ok: int, staff: frozenset[str], **kw) -> Row:
    return Row(ok=ok, machine="write", staff=staff, **kw)


ACME = {"external_id": "acme"}
TOO_LONG = "x" * 301

ROWS: dict[tuple[str, str], Row] = {
    # organizations
    ("organization-list", "GET"): api_read(members=True, other=200),
    ("organization-list", "POST"): api_write(400, ORGANIZATION_WRITERS, body={}),
    ("organization-detail", "GET"): api_read(members=True, other=404, kwargs=ACME),
    ("organization-detail", "PUT"): api_write(400, ORGANIZATION_WRITERS, kwargs=ACME, body={}),
    ("organization-detail", "PATCH"): api_write(400, ORGANIZATION_WRITERS, kwargs=ACME, body={"name": ""}),
    # closing an organization that is already closed answers it unchanged
    ("organization-detail", "DELETE"): api_write(200, ORGANIZATION_WRITERS, kwargs={"external_id": "acme-closed"}),
    # meters: the seller's configuration, never the customers'
    ("meter-list", "GET"): api_read(),
    ("meter-list", "POST"): api_write(400, OWNERS, body={}),
    ("meter-detail", "GET"): api_read(kwargs={"code": "calls"}),
    ("meter-detail", "PUT"): api_write(400, OWNERS, kwargs={"code": "calls"}, body={}),
    ("meter-detail", "PATCH"): api_write(400, OWNERS, kwargs={"code": "calls"}, body={"name": ""}),
    ("meter-detail", "DELETE"): api_write(400, OWNERS, kwargs={"code": "calls"}),  # meter_in_use: a plan uses it
    # usage
    ("usage", "GET"): api_read(members=True, other=404, org_key=True, query="customer=acme&meter=calls"),
    ("customer-usage", "GET"): api_read(members=True, other=404, org_key=True, kwargs=ACME),
    # plans: members see active plans and their own
    ("plans", "GET"): api_read(members=True, other=200),
    ("plans", "POST"): api_write(400, BILLING_WRITERS, body={}),
    ("plan", "GET"): api_read(members=True, other=200, kwargs={"code": "basic"}),
    ("plan", "PATCH"): api_write(400, BILLING_WRITERS, kwargs={"code": "basic"}, body={"name": ""}),
    ("plan-versions", "GET"): api_read(members=True, other=200, kwargs={"code": "basic"}),
    ("plan-versions", "POST"): api_write(400, BILLING_WRITERS, kwargs={"code": "basic"}, body={"trial_days": -1}),
    ("dunning-policy", "GET"): api_read(),
    ("dunning-policy", "PUT"): api_write(400, BILLING_WRITERS, body={"retry_days": [3, 1]}),
    ("plan-limits", "GET"): api_read(members=True, other=200, kwargs={"code": "basic"}),
    ("plan-limits", "PUT"): api_write(
        400, BILLING_WRITERS, kwargs={"code": "basic"}, body={"limits": [{"meter": "calls", "limit": "-1"}]}
    ),
    # subscriptions
    ("subscriptions", "GET"): api_read(members=True, other=200),
    ("subscriptions", "POST"): api_write(400, BILLING_WRITERS, body={}),
    ("subscription", "GET"): api_read(members=True, other=404, kwargs={"pk": "subscription"}),
    ("subscription-change", "POST"): api_write(400, BILLING_WRITERS, kwargs={"pk": "subscription"}, body={}),
    ("subscription-change-preview", "POST"): api_write(400, BILLING_WRITERS, kwargs={"pk": "subscription"}, body={}),
    ("subscription-cancel", "POST"): api_write(
        400, BILLING_WRITERS, kwargs={"pk": "subscription"}, body={"at_period_end": "maybe"}
    ),
    ("subscription-cancel-preview", "POST"): api_write(
        400, BILLING_WRITERS, kwargs={"pk": "subscription"}, body={"at_period_end": "maybe"}
    ),
    ("subscription-resume", "POST"): api_write(400, BILLING_WRITERS, kwargs={"pk": "subscription"}),  # not_resumable
    # coupons: the catalogue is the seller's; redemptions are the organization's
    ("coupons", "GET"): api_read(),
    ("coupons", "POST"): api_write(400, BILLING_WRITERS, body={}),
    ("coupon", "GET"): api_read(kwargs={"code": "FREE"}),
    ("coupon", "PATCH"): api_write(400, BILLING_WRITERS, kwargs={"code": "FREE"}, body={"name": ""}),
    ("organization-coupons", "GET"): api_read(members=True, other=404, kwargs=ACME),
    ("organization-coupons", "POST"): api_write(400, BILLING_WRITERS, kwargs=ACME, body={}),
    # FREE exists but Acme never redeemed it
    ("organization-coupon", "DELETE"): api_write(404, BILLING_WRITERS, kwargs={**ACME, "code": "FREE"}),
    # credit
    ("organization-credits", "GET"): api_read(members=True, other=404, kwargs=ACME),
    # dunning: the seller's product asks whether to serve
    ("organization-entitlement", "GET"): api_read(members=True, other=404, kwargs=ACME),
    ("organization-credits", "POST"): api_write(400, BILLING_WRITERS, kwargs=ACME, body={}),
    ("organization-credit-void", "POST"): api_write(
        400, BILLING_WRITERS, kwargs={**ACME, "pk": "grant"}, body={"description": TOO_LONG}
    ),
    # invoices and credit notes: members read their organizations' finalized invoices
    ("invoices", "GET"): api_read(members=True, other=200),
    ("invoice-preview", "GET"): api_read(members=True, other=404, query="customer=acme"),
    ("invoice", "GET"): api_read(members=True, other=404, kwargs={"pk": "open_invoice"}),
    ("invoice-pdf", "GET"): api_read(members=True, other=404, kwargs={"pk": "open_invoice"}),
    ("invoice-finalize", "POST"): api_write(409, BILLING_WRITERS, kwargs={"pk": "open_invoice"}),
    ("invoice-void", "POST"): api_write(409, BILLING_WRITERS, kwargs={"pk": "draft_invoice"}),
    ("invoice-mark-paid", "POST"): api_write(
        400, BILLING_WRITERS, kwargs={"pk": "open_invoice"}, body={"reference": TOO_LONG}
    ),
    ("invoice-mark-uncollectible", "POST"): api_write(409, BILLING_WRITERS, kwargs={"pk": "draft_invoice"}),
    ("invoice-credit-notes", "GET"): api_read(members=True, other=404, kwargs={"pk": "open_invoice"}),
    ("invoice-credit-notes", "POST"): api_write(400, BILLING_WRITERS, kwargs={"pk": "open_invoice"}, body={}),
    ("credit-note", "GET"): api_read(members=True, other=404, kwargs={"pk": "credit_note"}),
    # payments: members read their organizations' payments and methods; paying and refunding are
    # the seller's (Acme has no payment method: pay is refused after the check)
    ("payments", "GET"): api_read(members=True, other=200),
    ("payment", "GET"): api_read(members=True, other=404, kwargs={"pk": "payment"}),
    ("payment-refunds", "POST"): api_write(400, BILLING_WRITERS, kwargs={"pk": "payment"}, body={"amount": "x"}),
    ("invoice-pay", "POST"): api_write(409, BILLING_WRITERS, kwargs={"pk": "open_invoice"}),
    ("organization-payment-methods", "GET"): api_read(members=True, other=404, kwargs=ACME),
    # outbound webhook endpoints: the seller's integration, owners and admins only (reads too:
    # URLs and delivery logs); unknown ids answer 404 once access passed
    ("webhook-endpoints", "GET"): Row(ok=200, machine="read", staff=OWNERS),
    ("webhook-endpoints", "POST"): api_write(400, OWNERS, body={}),
    ("webhook-endpoint", "GET"): Row(ok=404, machine="read", staff=OWNERS, kwargs={"pk": "999999"}),
    ("webhook-endpoint", "PATCH"): api_write(404, OWNERS, kwargs={"pk": "999999"}, body={"description": "x"}),
    ("webhook-endpoint", "DELETE"): api_write(404, OWNERS, kwargs={"pk": "999999"}),
    ("webhook-endpoint-rotate-secret", "POST"): api_write(404, OWNERS, kwargs={"pk": "999999"}),
    ("webhook-endpoint-deliveries", "GET"): Row(ok=404, machine="read", staff=OWNERS, kwargs={"pk": "999999"}),
    ("webhook-delivery-replay", "POST"): api_write(404, OWNERS, kwargs={"pk": "999999", "delivery": "999999"}),
    # usage events: machines with the ingest scope only (an empty batch is refused after the check)
    ("events-ingest", "POST"): Row(ok=400, machine="ingest", kind="events", body={"events": []}),
    # the API's description is public (it holds no data)
    ("api-schema", "GET"): Row(ok=200, kind="public"),
    ("api-docs", "GET"): Row(ok=200, kind="public"),
    ("api-redoc", "GET"): Row(ok=200, kind="public"),
    # staff pages: a browser session of a staff role that passed the second factor
    ("admin:index", "GET"): Row(ok=200, staff=EVERY_ROLE, kind="staff_page"),
    ("adminpanel:home", "GET"): Row(ok=200, staff=EVERY_ROLE, kind="staff_page"),
    # customer 360 and the audit log: every role reads; actions need the role's permission (a JSON
    # body is no form: refused after the check, 400, nothing written)
    ("adminpanel:organizations", "GET"): Row(ok=200, staff=EVERY_ROLE, kind="staff_page", query="q=acme"),
    ("adminpanel:organization", "GET"): Row(ok=200, staff=EVERY_ROLE, kind="staff_page", kwargs=ACME),
    ("adminpanel:subscription_add", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:plan_change", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:credit_add", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:credit_note_add", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:coupon_apply", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:refund", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:one_off_charge", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:close", "POST"): Row(ok=400, staff=ORGANIZATION_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:note_add", "POST"): Row(ok=400, staff=ORGANIZATION_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:invoice_pdf", "GET"): Row(ok=200, staff=EVERY_ROLE, kind="staff_page", kwargs={"pk": "open_invoice"}),
    ("adminpanel:audit_log", "GET"): Row(ok=200, staff=EVERY_ROLE, kind="staff_page", query="action=1"),
    ("adminpanel:audit_log_csv", "GET"): Row(ok=200, staff=EVERY_ROLE, kind="staff_page", query="object_id=1"),
    ("adminpanel:analytics", "GET"): Row(ok=200, staff=EVERY_ROLE, kind="staff_page"),
    # compliance: every role reads; rerunning checks and thresholds are owners'; approvals the
    # billing writers' (an unknown approval is 404 after the check); GDPR export and erasure the
    # organization writers' (a JSON body is no form: 400, nothing written or exported)
    ("adminpanel:compliance", "GET"): Row(ok=200, staff=EVERY_ROLE, kind="staff_page"),
    ("adminpanel:compliance_run", "POST"): Row(ok=400, staff=OWNERS, kind="staff_page"),
    ("adminpanel:threshold_set", "POST"): Row(ok=400, staff=OWNERS, kind="staff_page"),
    ("adminpanel:approval_approve", "POST"): Row(
        ok=404, staff=BILLING_WRITERS, kind="staff_page", kwargs={"pk": "999999"}
    ),
    ("adminpanel:approval_reject", "POST"): Row(
        ok=404, staff=BILLING_WRITERS, kind="staff_page", kwargs={"pk": "999999"}
    ),
    ("adminpanel:gdpr_export", "POST"): Row(ok=400, staff=ORGANIZATION_WRITERS, kind="staff_page"),
    ("adminpanel:gdpr_erase", "POST"): Row(ok=400, staff=ORGANIZATION_WRITERS, kind="staff_page"),
    ("adminpanel:dunning", "GET"): Row(ok=200, staff=EVERY_ROLE, kind="staff_page"),
    # an empty form: 400, nothing done (dunning and the suspension are finance's)
    ("adminpanel:dunning_pause", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:dunning_retry", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:dunning_write_off", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:suspension", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page", kwargs=ACME),
    ("adminpanel:revenue", "GET"): Row(ok=200, staff=EVERY_ROLE, kind="staff_page"),
    ("adminpanel:revenue_close", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page"),
    ("adminpanel:journal_csv", "GET"): Row(
        ok=200, staff=EVERY_ROLE, kind="staff_page", query="from=2027-04-01&to=2027-04-30"
    ),
    ("adminpanel:journal_xlsx", "GET"): Row(
        ok=200, staff=EVERY_ROLE, kind="staff_page", query="from=2027-04-01&to=2027-04-30"
    ),
    ("adminpanel:account_map", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page"),
    # accounting exports: every role reads and downloads, finance asks (an empty form: 400, nothing
    # stored or queued); an unknown export is a 404 after the check
    ("adminpanel:exports", "GET"): Row(ok=200, staff=EVERY_ROLE, kind="staff_page"),
    ("adminpanel:export_create", "POST"): Row(ok=400, staff=BILLING_WRITERS, kind="staff_page"),
    ("adminpanel:export_status", "GET"): Row(ok=404, staff=EVERY_ROLE, kind="staff_page", kwargs={"pk": "999999"}),
    ("adminpanel:export_file", "GET"): Row(
        ok=404, staff=EVERY_ROLE, kind="staff_page", kwargs={"pk": "999999", "fmt": "csv"}
    ),
    # live usage: a member's browser session, for their own organization
    ("ws:usage", "CONNECT"): Row(ok=0, members=True, kind="websocket"),
}

# Views that are plain functions declare no methods DRF or Django could list: named here.
FUNCTION_VIEW_METHODS = {"events-ingest": ["POST"], "admin:index": ["GET"], "adminpanel:home": ["GET"]}
FUNCTION_VIEW_METHODS.update(
    {
        f"adminpanel:{name}": [method]
        for method, names in (
            (
                "GET",
                [
                    "organizations",
                    "organization",
                    "invoice_pdf",
                    "audit_log",
                    "audit_log_csv",
                    "compliance",
                    "dunning",
                    "revenue",
                    "journal_csv",
                    "journal_xlsx",
                    "exports",
                    "export_status",
                    "export_file",
                ],
            ),
            (
                "POST",
                [
                    "subscription_add",
                    "plan_change",
                    "credit_add",
                    "credit_note_add",
                    "coupon_apply",
                    "refund",
                    "one_off_charge",
                    "close",
                    "note_add",
                    "compliance_run",
                    "threshold_set",
                    "approval_approve",
                    "approval_reject",
                    "gdpr_export",
                    "gdpr_erase",
                    "dunning_pause",
                    "dunning_retry",
                    "dunning_write_off",
                    "suspension",
                    "revenue_close",
                    "account_map",
                    "export_create",
                ],
            ),
        )
        for name in names
    }
)


def _patterns(patterns, prefix: str = "", namespace: str | None = None):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = pattern.namespace or namespace
            yield from _patterns(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern, namespace


def _methods(name: str, callback) -> list[str]:
    if name in FUNCTION_VIEW_METHODS:
        return FUNCTION_VIEW_METHODS[name]
    if getattr(callback, "actions", None):  # a DRF viewset's route
        return [method.upper() for method in callback.actions if method not in ("head", "options")]
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    assert view_class is not None, f"{name}: a function view; name its methods in FUNCTION_VIEW_METHODS"
    # HEAD and OPTIONS are answered for every view (test_head_and_options_answer_every_api_route).
    return [m.upper() for m in view_class.http_method_names if m not in ("head", "options") and hasattr(view_class, m)]


def routes_under_test() -> list[tuple[str, str]]:
    """(route name, method) for every route the matrix must cover, read from the URL configuration."""
    found = []
    for route, pattern, namespace in _patterns(get_resolver("config.urls_tenant").url_patterns):
        name = f"{namespace}:{pattern.name}" if namespace else pattern.name
        in_scope = route.startswith("api/") or route.startswith("staff/") or name == "admin:index"
        if in_scope:
            assert pattern.name, f"route {route} has no name: the matrix cannot address it"
            found += [(name, method) for method in _methods(name, pattern.callback)]
    from portal.ws import websocket_urlpatterns

    found += [("ws:" + str(p.pattern).strip("/").removeprefix("ws/"), "CONNECT") for p in websocket_urlpatterns]
    return found


def test_every_route_and_method_has_a_row():
    routes = routes_under_test()
    assert len(routes) == len(set(routes))
    assert sorted(set(routes) - set(ROWS)) == [], "routes without a row in the authorization matrix"
    assert sorted(set(ROWS) - set(routes)) == [], "rows for routes that no longer exist"


# -- the world and the principals ---------------------------------------------------------------


def build_world() -> dict:
    """Acme (on Basic, an open April invoice with a credit note and a stored PDF, a May draft, a
    credit grant), Acme Closed, Globex; the FREE coupon; the `calls` meter, used by Basic."""
    MeterFactory()
    PlanFactory(code="basic", name="Basic", currency="USD", base_fee="30.00", per_call=True)
    acme = OrganizationFactory(external_id="acme", currency="USD")
    closed = OrganizationFactory(external_id="acme-closed", currency="USD")
    globex = OrganizationFactory(external_id="globex", currency="USD")
    subscription = SubscriptionFactory(organization=acme, at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 4, 1))
    billing_run(at=utc(2027, 4, 2))
    billing_run(at=utc(2027, 5, 1))
    open_invoice = Invoice.objects.get(organization=acme, status=InvoiceStatus.OPEN)
    open_invoice.pdf.save(f"{open_invoice.number}.pdf", ContentFile(b"%PDF-1.4 april"), save=True)
    draft = Invoice.objects.get(organization=acme, status=InvoiceStatus.DRAFT)
    line = open_invoice.lines.first()
    note = credit_note_create(
        actor=None,
        invoice=open_invoice,
        reason="Outage",
        lines=[CreditNoteLineInput(invoice_line_id=line.pk, amount=Decimal("1.00"))],
    )
    grant = credit_grant(actor=None, organization=acme, amount=Decimal("10.00"), currency="USD")
    payment = Payment.objects.create(
        invoice=open_invoice,
        organization=acme,
        number=1,
        idempotency_key=f"inv{open_invoice.pk}-1",
        gateway="stripe",
        amount=open_invoice.amount_due,
        currency="USD",
        status=PaymentStatus.FAILED,
        failure_code="soft_decline",
    )
    organization_close(actor=None, organization=closed)
    coupon_create(
        actor=None, code="FREE", name="Free", discount_type="percentage", percent_off=Decimal(100), duration="forever"
    )
    return {
        "acme_org": acme,
        "globex_org": globex,
        "closed_org": closed,
        "subscription": subscription.pk,
        "open_invoice": open_invoice.pk,
        "draft_invoice": draft.pk,
        "credit_note": note.pk,
        "grant": grant.pk,
        "payment": payment.pk,
    }


@dataclass
class Principal:
    name: str
    # anonymous | other_tenant | machine | org_key | org_key_other | member | member_other | staff_mfa
    # | staff_no_mfa
    group: str
    scope: str | None = None  # machines
    role: str | None = None  # staff
    token: str | None = None
    client: Client | None = None  # a browser session (its cookie)

    @property
    def session_key(self) -> str | None:
        if self.client is None:
            return None
        return self.client.cookies[settings.SESSION_COOKIE_NAME].value


def build_principals(tenant_a, tenant_b, world: dict) -> list[Principal]:
    host = tenant_a.get_primary_domain().domain

    def browser() -> Client:
        return Client(HTTP_HOST=host)

    signin = browser()  # for the headless and OAuth sign-ins (their sessions are not kept)
    principals = [Principal("anonymous", "anonymous")]
    for scope in ("ingest", "read", "write"):
        secret = APIKeyFactory(name=f"key-{scope}", scopes=[scope]).secret
        principals.append(Principal(f"api key {scope}", "machine", scope=scope, token=secret))
    for scope in ("read", "write"):
        oauth_client_create(client_id=f"machine-{scope}", scopes=[scope], grant_types=["client_credentials"])
        token = oauth_client_credentials_token(signin, client_id=f"machine-{scope}", scope=scope)
        principals.append(Principal(f"oauth client credentials {scope}", "machine", scope=scope, token=token))

    for organization, group in ((world["acme_org"], "org_key"), (world["globex_org"], "org_key_other")):
        secret = APIKeyFactory(
            name=f"usage {organization.external_id}", scopes=["read"], organization=organization
        ).secret
        principals.append(Principal(f"{organization.external_id}'s usage key", group, scope="read", token=secret))

    member = UserFactory()
    for organization in (world["acme_org"], world["closed_org"]):
        MembershipFactory(user=member, organization=organization)
    outsider = MembershipFactory(organization=world["globex_org"]).user
    principals.append(Principal("member (jwt)", "member", token=jwt_login(signin, email=member.email)))
    member_browser = browser()
    member_browser.force_login(member)
    principals.append(Principal("member (session)", "member", client=member_browser))
    oauth_client_create(client_id="crm-app", scopes=["read", "write"], grant_types=["authorization_code"])
    consent = browser()
    consent.force_login(member)
    code_token = oauth_authorization_code_token(consent, client_id="crm-app", scope="read write")
    principals.append(Principal("member (oauth authorization code, read write)", "member", token=code_token))
    principals.append(
        Principal("member of another organization (jwt)", "member_other", token=jwt_login(signin, email=outsider.email))
    )

    for role in ROLES:
        plain = UserFactory(staff_role=role)  # no authenticator enrolled
        principals.append(
            Principal(
                f"{role} without mfa (jwt)", "staff_no_mfa", role=role, token=jwt_login(signin, email=plain.email)
            )
        )
        session = browser()
        session.force_login(plain)
        principals.append(Principal(f"{role} without mfa (session)", "staff_no_mfa", role=role, client=session))
        # Two users: allauth accepts each TOTP code once per user.
        enrolled = UserFactory(staff_role=role)
        token = jwt_login_mfa(signin, email=enrolled.email, totp_secret=totp_enable(enrolled))
        principals.append(Principal(f"{role} with mfa (jwt)", "staff_mfa", role=role, token=token))
        enrolled = UserFactory(staff_role=role)
        session = browser()
        staff_login(session, email=enrolled.email, totp_secret=totp_enable(enrolled))
        principals.append(Principal(f"{role} with mfa (session)", "staff_mfa", role=role, client=session))

    with tenant_context(tenant_b):
        b_key = APIKeyFactory(name="b", scopes=["ingest", "read", "write"]).secret
        b_owner = UserFactory(staff_role="owner")
        b_token = jwt_login_mfa(
            Client(HTTP_HOST=tenant_b.get_primary_domain().domain),
            email=b_owner.email,
            totp_secret=totp_enable(b_owner),
        )
    connection.set_tenant(tenant_a)
    principals.append(Principal("other tenant's api key", "other_tenant", token=b_key))
    principals.append(Principal("other tenant's owner with mfa (jwt)", "other_tenant", token=b_token))
    return principals


# -- expectations -------------------------------------------------------------------------------


def expected(row: Row, who: Principal) -> tuple[int, str | None]:
    """(status, error code) this principal must get for this row, from the rules in the module
    docstring."""
    if row.kind == "public":
        # open to anyone, but a credential that is not valid here is refused as everywhere
        return (401, None) if who.group == "other_tenant" else (row.ok, None)
    if row.kind == "staff_page":
        if who.client is None:
            return 302, "login"  # bearer credentials mean nothing to the pages
        if who.group == "staff_mfa" and who.role in row.staff:
            return row.ok, None
        if who.group == "staff_no_mfa":
            return 302, "second factor"
        return 403, None
    if row.kind == "websocket":
        if who.client is not None and who.group == "member":
            return 0, None  # accepted
        if who.group == "staff_no_mfa" and who.client is not None:
            return 4403, None
        return 4401, None
    if who.group in ("anonymous", "other_tenant"):
        return 401, None
    if row.kind == "events" and who.client is not None:
        return 401, None  # ingestion takes bearer credentials only
    if who.group == "staff_no_mfa":
        # Ingestion is not a staff power: a person's credential never carries `ingest`.
        return (403, "permission_denied") if row.kind == "events" else (403, "mfa_required")
    allowed = {
        "machine": who.scope == row.machine,
        "org_key": row.org_key,
        "org_key_other": row.org_key,
        "member": row.members,
        "member_other": row.members,
        "staff_mfa": who.role in row.staff,
    }[who.group]
    if not allowed:
        return 403, "permission_denied"
    if who.group in ("member_other", "org_key_other"):
        return row.other, None
    return row.ok, None


# -- requests -----------------------------------------------------------------------------------


def path_of(name: str, row: Row, world: dict) -> str:
    kwargs = {key: str(world.get(value, value)) for key, value in row.kwargs.items()}
    path = reverse(name, kwargs=kwargs)
    return f"{path}?{row.query}" if row.query else path


def http_call(who: Principal, method: str, path: str, row: Row, bare: Client):
    client = who.client or bare
    extra = bearer(who.token) if who.token else {}
    if method == "GET":
        return client.get(path, **extra)
    body = row.body if row.body is not None else {}
    return client.generic(method, path, data=json.dumps(body), content_type="application/json", **extra)


# Bookkeeping that reads legitimately touch: sessions, and an API key's last use.
NOT_DATA = ("django_session", "accounts_apikey")


def writes_so_far(schema: str) -> int:
    """Rows inserted, updated or deleted so far in this test's transaction in any table of the
    tenant's schema but NOT_DATA (PostgreSQL's per-transaction statistics, which count writes
    before commit): one cheap query, so it can run after every request."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables"
            " WHERE schemaname = %s AND NOT relname = ANY(%s)",
            [schema, list(NOT_DATA)],
        )
        return cursor.fetchone()[0]


async def ws_connect(host: str, who: Principal) -> int:
    from config.asgi import application

    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
    if who.client is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={who.session_key}".encode()))
    if who.token:
        headers.append((b"authorization", f"Bearer {who.token}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/usage/?organization=acme", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    # A refused consumer still waits for the client to go: let it, or its tasks linger.
    await communicator.disconnect()
    return 0 if connected else code


@pytest.fixture
def _quiet_request_log():
    # Django logs every 4xx as a warning; the matrix makes over a thousand on purpose.
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def _keep_test_connection(monkeypatch):
    # As in tests/portal/test_websocket.py: Channels must not close the test's connection.
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


@pytest.mark.django_db
def test_authorization_matrix(tenant_a, tenant_b, _keep_test_connection, _quiet_request_log, capsys):
    with tenant_context(tenant_a):
        world = build_world()
        principals = build_principals(tenant_a, tenant_b, world)
    host = tenant_a.get_primary_domain().domain
    bare = Client(HTTP_HOST=host)
    before = writes_so_far(tenant_a.schema_name)

    failures, count = [], 0
    for (name, method), row in sorted(ROWS.items()):
        for who in principals:
            want_status, want_code = expected(row, who)
            count += 1
            if row.kind == "websocket":
                got_status, got_code = async_to_sync(ws_connect)(host, who), None
                detail = ""
            else:
                response = http_call(who, method, path_of(name, row, world), row, bare)
                got_status = response.status_code
                detail = b"(a file)" if response.streaming else response.content[:300]
                got_code = _code_of(response, want_code)
            if (got_status, got_code) != (want_status, want_code):
                failures.append(
                    f"{method} {name} as {who.name}: want {want_status} {want_code or ''}, "
                    f"got {got_status} {got_code or ''} {detail!r}"
                )
            if (after := writes_so_far(tenant_a.schema_name)) != before:
                failures.append(f"{method} {name} as {who.name} ({got_status}) wrote to the database")
                before = after
    with capsys.disabled():
        print(
            f"\nauthorization matrix: {len(ROWS)} route-methods x {len(principals)} principals = {count} checks, "
            f"{len(failures)} failures"
        )
    assert not failures, "\n".join(failures)


def _code_of(response, want_code: str | None) -> str | None:
    if want_code is None:
        return None
    if want_code in ("login", "second factor"):
        location = response.get("Location", "")
        if location.startswith("/accounts/login/"):
            return "login"
        if location.startswith("/accounts/2fa/"):
            return "second factor"
        return location or None
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


@pytest.mark.django_db
def test_the_write_detector_sees_a_write(tenant_a, client_a):
    """The matrix's "nothing written" check can fail: an allowed write moves it."""
    with tenant_context(tenant_a):
        secret = APIKeyFactory(name="w", scopes=["write"]).secret
    before = writes_so_far(tenant_a.schema_name)
    assert client_a.get("/api/v1/organizations", **bearer(secret)).status_code == 403
    assert writes_so_far(tenant_a.schema_name) == before
    body = {"external_id": "new", "name": "New", "currency": "USD"}
    created = client_a.post("/api/v1/organizations", body, content_type="application/json", **bearer(secret))
    assert created.status_code == 201
    assert writes_so_far(tenant_a.schema_name) > before


@pytest.mark.django_db
def test_head_and_options_answer_every_api_route(tenant_a, _quiet_request_log):
    """HEAD is GET without a body (same access); OPTIONS answers any valid credential with the
    allowed methods and no data (never 403), anonymous callers 401."""
    with tenant_context(tenant_a):
        world = build_world()
        reader = APIKeyFactory(name="r", scopes=["read"]).secret
        member = UserFactory()
        MembershipFactory(user=member, organization=world["acme_org"])
    client = Client(HTTP_HOST=tenant_a.get_primary_domain().domain)
    member_token = jwt_login(client, email=member.email)
    rows = {name: row for (name, method), row in ROWS.items() if row.kind == "api"}
    methods: dict[str, set[str]] = {}
    for name, method in ROWS:
        if ROWS[(name, method)].kind == "api":
            methods.setdefault(name, set()).add(method)
    failures = []
    for name, row in sorted(rows.items()):
        get_row = ROWS.get((name, "GET"))
        path = path_of(name, get_row or row, world)
        if get_row is not None:
            head = client.head(path, **bearer(reader))
            content = b"".join(head.streaming_content) if head.streaming else head.content
            if (head.status_code, content) != (get_row.ok, b""):
                failures.append(f"HEAD {name}: {head.status_code} {content[:100]!r}")
            if client.head(path).status_code != 401:
                failures.append(f"HEAD {name} anonymous: not 401")
        options = client.options(path, **bearer(member_token))
        allowed = {m.strip() for m in options.get("Allow", "").split(",")}
        want = methods[name] | {"OPTIONS"} | ({"HEAD"} if "GET" in methods[name] else set())
        if options.status_code != 200 or allowed != want:
            failures.append(f"OPTIONS {name}: {options.status_code} Allow={sorted(allowed)} {options.content[:200]!r}")
        elif set(options.json()) - {"name", "description", "renders", "parses", "actions"}:
            failures.append(f"OPTIONS {name}: unexpected keys {sorted(options.json())}")
        if (anonymous := client.options(path)).status_code != 401:
            failures.append(f"OPTIONS {name} anonymous: {anonymous.status_code}")
    assert not failures, "\n".join(failures)
