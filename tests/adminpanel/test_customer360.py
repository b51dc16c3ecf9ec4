"""Staff customer 360 (issue 14 item 1): search, the organization page, and its actions, each
previewed with its money effect, done on a confirm that carries what was shown, role-checked and
audited; refusals write nothing."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from adminpanel.models import StaffNote
from billing.models import CreditEntry, Organization, PlanVersion, Subscription
from invoicing.models import CreditNote, Invoice
from tests.factories import OrganizationFactory, PlanFactory
from tests.portal.scenario import NOW, seed

pytestmark = pytest.mark.django_db
PAGE = "/staff/organizations/acme/"


@pytest.fixture
def acme(in_a):
    seeded = seed()
    PlanFactory(code="pro", name="Pro", currency="EUR", base_fee="50.00", per_call=True)
    OrganizationFactory(external_id="globex", name="Globex Inc", currency="USD", billing_email="ap@globex.example")
    with time_machine.travel(NOW, tick=False):
        yield seeded


def fingerprint(html: str) -> str:
    return re.search(r'name="confirm" value="([0-9a-f]{64})"', html).group(1)


def effect(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr><th scope="row">(.*?)</th><td data-effect>(.*?)</td></tr>', html)


def writes(model) -> int:
    return model.objects.count()


def test_search_finds_by_name_id_and_email(acme, client_a, staff):
    staff("viewer")
    body = client_a.get("/staff/organizations/", {"q": "GLOBEX.ex"}).content.decode()
    assert '<a href="/staff/organizations/globex/">Globex Inc</a>' in body
    assert "Acme GmbH" not in body
    body = client_a.get("/staff/organizations/", {"q": "acm"}).content.decode()
    assert '<a href="/staff/organizations/acme/">Acme GmbH</a>' in body
    assert "Globex Inc" not in body
    body = client_a.get("/staff/organizations/", {"q": "nobody"}).content.decode()
    assert "No organization matches “nobody”." in body


def test_search_paginates(acme, client_a, staff):
    staff("viewer")
    for n in range(30):
        OrganizationFactory(external_id=f"bulk-{n:02}", name=f"Bulk {n:02}")
    first = client_a.get("/staff/organizations/", {"q": "bulk"}).content.decode()
    assert first.count('href="/staff/organizations/bulk-') == 25
    assert "Page 1 of 2 (30 in all)" in first
    assert 'href="?q=bulk&amp;page=2"' in first
    second = client_a.get("/staff/organizations/", {"q": "bulk", "page": "2"}).content.decode()
    assert second.count('href="/staff/organizations/bulk-') == 5
    assert "Bulk 29" in second


def test_organization_page_shows_the_customer(acme, client_a, staff):
    staff("viewer")
    invoice = Invoice.objects.get(organization=acme["organization"])
    response = client_a.get(PAGE)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>Acme GmbH</h1>" in body
    assert "times in Europe/Berlin" in body
    assert "Basic (v1)" in body
    assert "€10.00 / month" in body
    assert f"<td>{invoice.number}</td><td>Open (finalized, awaiting payment)</td><td>1 Apr 2027 00:05 CEST</td>" in body
    assert f'<td class="num">€{invoice.total:.2f}</td>' in body
    assert "Balance: <strong data-credit-balance>€0.00</strong>" in body
    assert "<p data-dunning>Never in dunning.</p>" in body
    assert "UTC days, 17 Mar 2027 \u2013 15 Apr 2027 (today so far)" in body
    assert '<strong data-meter-total="calls">140</strong>' in body  # the scenario's calls so far
    assert '<tr><td>Thu 1 Apr</td><td class="num">5</td></tr>' in body
    assert '<tr><td>Thu 15 Apr</td><td class="num">5</td></tr>' in body
    assert "Tue 16 Mar" not in body and '<tr><td>Wed 17 Mar</td><td class="num">0</td></tr>' in body
    assert 'data-chart="chart-calls"' in body and "src/staff.js" in body
    assert "No notes." in body
    assert "{&quot;" not in body and '{"event"' not in body  # no raw JSON
    # the audit trail: the organization's creation without auditlog's reverse-relation noise
    assert "name: Acme GmbH; " in body and "billing.Subscription.None" not in body
    assert "event: invoice.finalized; total: 10.00; number: INV-000001; amount_due: 10.00" in body
    assert client_a.get("/staff/organizations/nobody/").status_code == 404


def test_grant_credit_previews_then_grants(acme, client_a, staff):
    user = staff("finance")
    form = {"amount": "25.00", "kind": "promotional", "expires_on": "", "description": "Outage"}
    response = client_a.post(PAGE + "credit/", form)
    assert response.status_code == 200
    body = response.content.decode()
    assert effect(body) == [("Credit granted", "€25.00"), ("Balance", "€0.00 → €25.00"), ("Expires", "never")]
    assert writes(CreditEntry) == 0
    response = client_a.post(PAGE + "credit/", {**form, "confirm": fingerprint(body)})
    assert response.status_code == 302 and response["Location"] == PAGE
    again = client_a.post(PAGE + "credit/", {**form, "confirm": fingerprint(body)})  # a double click
    assert again.status_code == 200 and ("Balance", "€25.00 → €50.00") in effect(again.content.decode())
    grant = CreditEntry.objects.get()
    assert (grant.amount, grant.currency, grant.kind, grant.description, grant.created_by) == (
        Decimal("25.0000"),
        "EUR",
        "promotional",
        "Outage",
        user,
    )
    entry = LogEntry.objects.get(content_type=ContentType.objects.get_for_model(CreditEntry), object_id=grant.pk)
    assert entry.actor == user and entry.action == LogEntry.Action.CREATE
    assert "Balance: <strong data-credit-balance>€25.00</strong>" in client_a.get(PAGE).content.decode()


def test_a_stale_or_forged_confirm_does_nothing(acme, client_a, staff):
    staff("finance")
    form = {"amount": "25.00", "kind": "promotional"}
    response = client_a.post(PAGE + "credit/", {**form, "confirm": "0" * 64})
    assert response.status_code == 200
    assert "The effect changed since it was shown" in response.content.decode()
    assert writes(CreditEntry) == 0


@pytest.mark.parametrize("role", ["support", "viewer"])
def test_roles_without_billing_power_are_refused(acme, client_a, staff, role):
    staff(role)
    audit_before = LogEntry.objects.count()
    version = PlanVersion.objects.get(plan__code="pro")
    for path, form in [
        ("credit/", {"amount": "25.00", "kind": "promotional"}),
        ("subscriptions/", {"plan_version": version.pk, "billing_mode": "calendar", "start_on": "2027-04-15"}),
        ("plan-change/", {"subscription": acme["subscription"].pk, "plan_version": version.pk}),
    ]:
        assert client_a.post(PAGE + path, form).status_code == 403
    assert writes(CreditEntry) == 0 and writes(Subscription) == 1
    assert LogEntry.objects.count() == audit_before


def test_invalid_input_is_refused_with_nothing_written(acme, client_a, staff):
    staff("finance")
    response = client_a.post(PAGE + "credit/", {"amount": "-1", "kind": "promotional"})
    assert response.status_code == 400
    assert "Amount: Ensure this value is greater than or equal to 0." in response.content.decode()
    response = client_a.post(PAGE + "credit/", {"amount": "0.001", "kind": "promotional"})
    assert response.status_code == 400
    assert "amount must be positive with at most the currency&#x27;s decimals (EUR)." in response.content.decode()
    assert writes(CreditEntry) == 0


def test_create_subscription(acme, client_a, staff):
    user = staff("finance")
    other = OrganizationFactory(external_id="initech", name="Initech", currency="EUR", timezone="Europe/Berlin")
    version = PlanVersion.objects.get(plan__code="pro")
    form = {"plan_version": version.pk, "billing_mode": "calendar", "start_on": "2027-04-16"}
    body = client_a.post("/staff/organizations/initech/subscriptions/", form).content.decode()
    assert effect(body) == [
        ("Live subscriptions before", "0"),
        ("Plan", "Pro (pro v1)"),
        ("Base fee", "€50.00 per month"),
        ("Status", "Pending (starts at a later date)"),
        ("First period", "16 Apr 2027 00:00 CEST to 1 May 2027 00:00 CEST"),
        ("Pro base fee (prorated)", "€25.00"),  # 15 of April's 30 days
        ("First bill, before tax", "€25.00"),
    ]
    assert not Subscription.objects.filter(organization=other).exists()
    response = client_a.post("/staff/organizations/initech/subscriptions/", {**form, "confirm": fingerprint(body)})
    assert response.status_code == 302
    # the same confirm again (a double click) shows the changed effect and subscribes nobody
    again = client_a.post("/staff/organizations/initech/subscriptions/", {**form, "confirm": fingerprint(body)})
    assert again.status_code == 200 and "The effect changed since it was shown" in again.content.decode()
    assert ("Live subscriptions before", "1") in effect(again.content.decode())
    subscription = Subscription.objects.get(organization=other)
    assert (subscription.plan_version, subscription.status, subscription.started_at) == (
        version,
        "pending",
        datetime(2027, 4, 16, tzinfo=ZoneInfo("Europe/Berlin")),
    )
    entry = LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(Subscription), object_id=subscription.pk, action=0
    )
    assert entry.actor == user


def test_change_plan_shows_the_preview_bill(acme, client_a, staff):
    user = staff("finance")
    subscription = acme["subscription"]
    version = PlanVersion.objects.get(plan__code="pro")
    form = {"subscription": subscription.pk, "plan_version": version.pk, "timing": ""}
    body = client_a.post(PAGE + "plan-change/", form).content.decode()
    shown = effect(body)
    assert shown[0] == ("Change", "upgrade to Pro")
    assert shown[1] == ("Effective", "15 Apr 2027 14:00 CEST")
    assert shown[-1][0] == "Bill at the change, before tax"
    subscription.refresh_from_db()
    assert subscription.plan_version.plan.code == "basic"
    client_a.post(PAGE + "plan-change/", {**form, "confirm": fingerprint(body)})
    subscription.refresh_from_db()
    assert subscription.plan_version == version
    entry = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Subscription), object_id=subscription.pk
    ).latest("pk")
    assert entry.changes["event"] == [None, "subscription.upgrade"] and entry.actor == user


def test_credit_note_preview_writes_nothing_then_issues(acme, client_a, staff):
    user = staff("finance")
    invoice = Invoice.objects.get(organization=acme["organization"])
    audit_before = LogEntry.objects.count()
    form = {"invoice": invoice.pk, "amount": "4.00", "reason": "Outage"}
    body = client_a.post(PAGE + "credit-notes/", form).content.decode()
    shown = dict(effect(body))
    assert shown["Invoice"] == invoice.number and shown["Net"] == "€4.00"
    assert writes(CreditNote) == 0 and LogEntry.objects.count() == audit_before
    client_a.post(PAGE + "credit-notes/", {**form, "confirm": fingerprint(body)})
    note = CreditNote.objects.get()
    assert note.subtotal == Decimal("4.0000") and note.reason == "Outage"
    assert f"{note.total:.2f}" in shown["Total"]
    assert LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(CreditNote), actor=user).exists()


def test_close_needs_the_customer_id_typed(acme, client_a, staff):
    user = staff("support")
    response = client_a.post(PAGE + "close/", {"external_id": "wrong"})
    assert response.status_code == 400
    assert "This is not the organization&#x27;s customer ID." in response.content.decode()
    body = client_a.post(PAGE + "close/", {"external_id": "acme"}).content.decode()
    assert ("Live subscriptions ended now", "1") in effect(body)
    assert Organization.objects.get(external_id="acme").status == "active"
    client_a.post(PAGE + "close/", {"external_id": "acme", "confirm": fingerprint(body)})
    org = Organization.objects.get(external_id="acme")
    assert org.status == "closed"
    entry = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Organization), object_id=org.pk)
    assert entry.latest("pk").actor == user


def test_notes_are_kept_and_audited(acme, client_a, staff):
    user = staff("support")
    response = client_a.post(PAGE + "notes/", {"body": "Called Jane: pays Friday."})
    assert response.status_code == 302
    note = StaffNote.objects.get()
    assert (note.author, note.organization, note.body) == (user, acme["organization"], "Called Jane: pays Friday.")
    body = client_a.get(PAGE).content.decode()
    assert "<blockquote data-note>Called Jane: pays Friday.<footer>" in body
    assert f"<td>note: {note.pk}; event: staff_note.added</td>" in body
    assert f"<td>id: {note.pk}; body: Called Jane: pays Friday.;" in body
    assert "created_at: 15 Apr 2027 12:00:00 UTC" in body
    client_a.logout()
    staff("viewer")
    assert client_a.post(PAGE + "notes/", {"body": "x"}).status_code == 403
    assert StaffNote.objects.count() == 1


POISON = ["\x00", "NaN", "Infinity", "1e400", "-0", "9" * 400, "٣", "x" * 5000, "\ud800"]


def test_malformed_input_is_refused_never_a_500(acme, client_a, staff):
    staff("owner")
    audit_before = LogEntry.objects.count()
    counts = [model.objects.count() for model in (CreditEntry, Subscription, CreditNote, StaffNote, Organization)]
    actions = ["credit/", "subscriptions/", "plan-change/", "credit-notes/", "coupons/", "refunds/", "close/"]
    fields = ["amount", "kind", "plan_version", "subscription", "invoice", "coupon", "payment", "external_id", "body"]
    for value in POISON:
        safe = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        for action in actions:
            response = client_a.post(PAGE + action, dict.fromkeys(fields, safe))
            assert response.status_code == 400, (action, value, response.status_code)
        for path in ("/staff/organizations/", "/staff/audit/", "/staff/audit/export.csv"):
            query = {"q": safe, "page": safe, "since": safe, "until": safe, "action": safe, "object_id": safe}
            assert client_a.get(path, query).status_code in (200, 400), (path, value)
    for body in ("\x00", "x" * 2001, ""):  # a note is free text, but not these
        assert client_a.post(PAGE + "notes/", {"body": body}).status_code == 400
    assert client_a.get("/staff/organizations/%00/").status_code == 404
    assert [model.objects.count() for model in (CreditEntry, Subscription, CreditNote, StaffNote, Organization)] == (
        counts
    )
    assert LogEntry.objects.count() == audit_before
