"""The staff compliance dashboard (issue 14 item 6): each live check passes on a clean tenant and
fails when its problem is planted; the second approver of credits and refunds; GDPR export and
erasure."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from accounts.models import User
from adminpanel.compliance import compliance_run
from adminpanel.models import ApprovalThreshold, ComplianceCheck, PendingApproval
from billing.models import CreditEntry, Membership, Organization
from invoicing.models import CreditNote, Invoice
from invoicing.services.invoice import CreditNoteLineInput, credit_note_create
from payments.models import GatewaySettings
from tests.factories import MembershipFactory, UserFactory
from tests.portal.scenario import NOW, seed

pytestmark = pytest.mark.django_db
PAGE = "/staff/compliance/"
ORG_PAGE = "/staff/organizations/acme/"


@pytest.fixture
def acme(in_a):
    seeded = seed()
    ApprovalThreshold.objects.create(currency="EUR", amount=Decimal("100"))
    with time_machine.travel(NOW, tick=False):
        yield seeded


def fingerprint(html: str) -> str:
    return re.search(r'name="confirm" value="([0-9a-f]{64})"', html).group(1)


def effect(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr><th scope="row">(.*?)</th><td data-effect>(.*?)</td></tr>', html)


def results() -> dict[str, bool]:
    return {row.key: row.passed for row in compliance_run()}


CLEAN = {
    "pci_card_numbers": True,
    "pci_secrets_encrypted": True,
    "pci_tls": True,
    "sox_audit_coverage": True,
    "sox_second_approver": True,
    "gdpr_event_retention": True,
}


def test_every_check_passes_on_a_clean_tenant_and_the_page_shows_when(acme, client_a, staff):
    assert results() == CLEAN
    row = ComplianceCheck.objects.get(key="sox_audit_coverage")
    assert row.last_passed_at == NOW and row.findings == []
    assert row.figures["finalized invoices"] == {"rows": 1, "unaudited": 0}
    staff("viewer")
    body = client_a.get(PAGE).content.decode()
    assert body.count("<td data-result>pass</td>") == 6
    # in UTC, named, and as an instant the browser shows in its own zone (static/src/staff-time.js)
    passed = '<time datetime="2027-04-15T12:00:00Z" data-local-time>15 Apr 2027 12:00 UTC</time>'
    assert body.count(f"<td data-last-passed>{passed}</td>") == 6
    assert '<a href="/staff/compliance/" aria-current="page">Compliance</a>' in body


def test_a_card_number_in_a_json_column_fails_the_scan(acme):
    assert results()["pci_card_numbers"] is True
    passed_at = ComplianceCheck.objects.get(key="pci_card_numbers").last_passed_at
    Organization.objects.filter(external_id="acme").update(metadata={"note": "card 4242-4242-4242-4242"})
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert results() == {**CLEAN, "pci_card_numbers": False}
    row = ComplianceCheck.objects.get(key="pci_card_numbers")
    assert row.findings == ["billing_organization.metadata: 1 value(s) with a card number"]
    assert row.last_passed_at == passed_at  # when it last passed, not when it last ran
    assert "4242" not in json.dumps(row.findings)
    # a number that fails Luhn is not a card number
    Organization.objects.filter(external_id="acme").update(metadata={"order": "4242424242424241"})
    assert results()["pci_card_numbers"] is True


def test_a_plaintext_gateway_secret_fails(acme):
    settings_row = GatewaySettings.objects.create()
    settings_row.stripe_secret_key = "sk_test_encrypted"
    settings_row.save()
    assert results()["pci_secrets_encrypted"] is True
    GatewaySettings.objects.update(stripe_secret_key_encrypted="sk_test_plaintext")
    assert results()["pci_secrets_encrypted"] is False
    assert ComplianceCheck.objects.get(key="pci_secrets_encrypted").findings == [
        f"payments_gatewaysettings.stripe_secret_key_encrypted (row {settings_row.pk}): "
        "not encrypted under a current key"
    ]


def test_production_transport_settings(acme, settings):
    settings.DJANGO_ENV = "production"
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert results()["pci_tls"] is True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SESSION_COOKIE_SECURE = False
    assert results()["pci_tls"] is False
    assert ComplianceCheck.objects.get(key="pci_tls").findings == [
        "SESSION_COOKIE_SECURE is False, not True",
        "SECURE_HSTS_SECONDS is 3600, below 31536000",
    ]


def test_an_unaudited_credit_note_is_listed(acme):
    invoice = Invoice.objects.get(organization=acme["organization"])
    line = invoice.lines.order_by("position").first()
    note = credit_note_create(
        actor=None,
        invoice=invoice,
        reason="Outage",
        lines=[CreditNoteLineInput(invoice_line_id=line.pk, amount=Decimal("1"))],
    )
    assert results()["sox_audit_coverage"] is True
    LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(CreditNote), object_pk=str(note.pk)).delete()
    assert results() == {**CLEAN, "sox_audit_coverage": False}
    row = ComplianceCheck.objects.get(key="sox_audit_coverage")
    assert row.findings == [f"credit notes: {note} (id {note.pk}) has no audit entry"]
    assert row.figures["credit notes"] == {"rows": 1, "unaudited": 1}
    assert row.summary.startswith("1 of ")


def test_a_currency_without_threshold_fails_the_second_approver_check(acme):
    ApprovalThreshold.objects.all().delete()
    assert results()["sox_second_approver"] is False
    assert ComplianceCheck.objects.get(key="sox_second_approver").findings == ["no threshold: EUR"]


def test_raw_events_older_than_the_retention_fail(acme, settings):
    assert results()["gdpr_event_retention"] is True
    # 60 days on with a 30-day retention, April's events (from 1 April 10:00 UTC) should be gone:
    # May's partition is the oldest one kept
    settings.EVENT_RAW_RETENTION_DAYS = 30
    with time_machine.travel(NOW + timedelta(days=60), tick=False):
        assert results()["gdpr_event_retention"] is False
    row = ComplianceCheck.objects.get(key="gdpr_event_retention")
    assert row.figures == {"retention_days": 30, "oldest": "2027-04-01T10:00:00+00:00", "oldest_age_days": 74}
    assert row.findings == ["oldest raw event 2027-04-01 (74 days) is before 2027-05-01"]


def test_the_roles_table_comes_from_the_role_backend(acme, client_a, staff):
    staff("viewer")
    body = client_a.get(PAGE).content.decode()
    refund_row = re.search(r'<th scope="row">Refund a payment</th>(.*?)</tr>', body).group(1)
    cells = re.findall(r"<td>(yes|no)</td>", refund_row)
    assert cells == ["yes", "yes", "yes", "no", "no"]  # owner, admin, finance, support, viewer


def test_running_the_checks_is_for_owners_and_admins(acme, client_a, staff):
    staff("finance")
    assert client_a.post(PAGE + "run/", {"checks": "all"}).status_code == 403
    assert ComplianceCheck.objects.count() == 0
    client_a.logout()
    staff("admin")
    assert client_a.post(PAGE + "run/", {"checks": "nonsense"}).status_code == 400
    assert ComplianceCheck.objects.count() == 0
    response = client_a.post(PAGE + "run/", {"checks": "pci_tls"})
    assert response.status_code == 302 and response["Location"] == PAGE
    assert list(ComplianceCheck.objects.values_list("key", flat=True)) == ["pci_tls"]
    client_a.post(PAGE + "run/", {"checks": "all"})
    assert ComplianceCheck.objects.count() == 6
    assert "6 checks run: 0 failed." in client_a.get(PAGE).content.decode()


def test_a_credit_above_the_threshold_waits_for_a_second_approver(acme, client_a, staff):
    requester = staff("finance")
    form = {"amount": "150.00", "kind": "promotional", "expires_on": "", "description": "Goodwill"}
    body = client_a.post(ORG_PAGE + "credit/", form).content.decode()
    assert effect(body)[-2:] == [
        ("Second approver", "required above €100.00: this creates a pending approval"),
        ("Already pending for this organization", "0"),
    ]
    response = client_a.post(ORG_PAGE + "credit/", {**form, "confirm": fingerprint(body)})
    assert response.status_code == 302
    again = client_a.post(ORG_PAGE + "credit/", {**form, "confirm": fingerprint(body)})  # a double click
    assert again.status_code == 200 and ("Already pending for this organization", "1") in effect(again.content.decode())
    approval = PendingApproval.objects.get()
    assert (approval.kind, approval.amount, approval.currency, approval.status, approval.requested_by) == (
        "credit",
        Decimal("150.0000"),
        "EUR",
        "pending",
        requester,
    )
    assert CreditEntry.objects.count() == 0
    url = f"{PAGE}approvals/{approval.pk}/approve/"
    # the requester cannot approve their own request
    refused = client_a.post(url)
    assert refused.status_code == 400 and "A second staff user must decide" in refused.content.decode()
    assert CreditEntry.objects.count() == 0
    client_a.logout()
    approver = staff("admin")
    body = client_a.post(url).content.decode()
    assert ("Amount", "€150.00") in effect(body) and CreditEntry.objects.count() == 0
    response = client_a.post(url, {"confirm": fingerprint(body)})
    assert response.status_code == 302
    grant = CreditEntry.objects.get()
    assert (grant.amount, grant.kind, grant.description, grant.created_by) == (
        Decimal("150.0000"),
        "promotional",
        "Goodwill",
        approver,
    )
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by) == ("approved", approver)
    entry = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(PendingApproval), object_pk=str(approval.pk)
    ).latest("pk")
    assert entry.actor == approver and entry.changes["status"] == ["pending", "approved"]
    # decided once: a second approval of it does nothing
    assert client_a.post(url, {"confirm": fingerprint(body)}).status_code == 400
    assert CreditEntry.objects.count() == 1


def test_a_rejected_request_grants_nothing_and_small_credits_need_no_approver(acme, client_a, staff):
    staff("finance")
    form = {"amount": "150.00", "kind": "promotional"}
    body = client_a.post(ORG_PAGE + "credit/", form).content.decode()
    client_a.post(ORG_PAGE + "credit/", {**form, "confirm": fingerprint(body)})
    approval = PendingApproval.objects.get()
    client_a.logout()
    staff("finance")
    url = f"{PAGE}approvals/{approval.pk}/reject/"
    body = client_a.post(url).content.decode()
    client_a.post(url, {"confirm": fingerprint(body)})
    approval.refresh_from_db()
    assert approval.status == "rejected" and CreditEntry.objects.count() == 0
    form = {"amount": "100.00", "kind": "promotional"}  # at the threshold: not above it
    body = client_a.post(ORG_PAGE + "credit/", form).content.decode()
    assert "Second approver" not in body
    client_a.post(ORG_PAGE + "credit/", {**form, "confirm": fingerprint(body)})
    assert CreditEntry.objects.get().amount == Decimal("100.0000") and PendingApproval.objects.count() == 1


def test_approvals_are_for_billing_writers(acme, client_a, staff):
    staff("finance")
    form = {"amount": "150.00", "kind": "promotional"}
    body = client_a.post(ORG_PAGE + "credit/", form).content.decode()
    client_a.post(ORG_PAGE + "credit/", {**form, "confirm": fingerprint(body)})
    approval = PendingApproval.objects.get()
    client_a.logout()
    staff("support")
    assert client_a.post(f"{PAGE}approvals/{approval.pk}/approve/").status_code == 403
    approval.refresh_from_db()
    assert approval.status == "pending" and CreditEntry.objects.count() == 0


def test_setting_a_threshold_is_confirmed_and_audited(acme, client_a, staff):
    staff("finance")
    assert client_a.post(PAGE + "thresholds/", {"currency": "usd", "amount": "500"}).status_code == 403
    client_a.logout()
    user = staff("owner")
    form = {"currency": "usd", "amount": "500"}
    body = client_a.post(PAGE + "thresholds/", form).content.decode()
    assert effect(body) == [("Currency", "USD"), ("Second approver above", "none → $500.00")]
    assert not ApprovalThreshold.objects.filter(currency="USD").exists()
    client_a.post(PAGE + "thresholds/", {**form, "confirm": fingerprint(body)})
    row = ApprovalThreshold.objects.get(currency="USD")
    assert row.amount == Decimal("500.0000")
    entry = LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(ApprovalThreshold), object_pk=str(row.pk)
    )
    assert entry.actor == user
    assert client_a.post(PAGE + "thresholds/", {"currency": "XXY", "amount": "-1"}).status_code == 400


def _export(client_a, external_id="acme") -> zipfile.ZipFile:
    form = {"export-external_id": external_id}
    body = client_a.post(PAGE + "gdpr/export/", form).content.decode()
    response = client_a.post(PAGE + "gdpr/export/", {**form, "confirm": fingerprint(body)})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="acme-personal-data.zip"'
    return zipfile.ZipFile(io.BytesIO(response.content))


def rows(archive: zipfile.ZipFile, name: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode())))


def test_export_is_a_zip_of_the_customers_data(acme, client_a, staff):
    Organization.objects.filter(external_id="acme").update(billing_email="ap@acme.example")
    User.objects.filter(email="owner@acme.example").update(name="Ada Lovelace")
    user = staff("support")
    archive = _export(client_a)
    assert sorted(archive.namelist()) == [
        "invoices.csv",
        "organization.json",
        "payments.csv",
        "people.csv",
        "usage.csv",
    ]
    assert json.loads(archive.read("organization.json"))["external_id"] == "acme"
    people = [(r["kind"], r["name"], r["email"], r["role"]) for r in rows(archive, "people.csv")]
    assert people == [
        ("member", "Ada Lovelace", "owner@acme.example", "owner"),
        ("billing_contact", "", "ap@acme.example", ""),
    ]
    invoice = Invoice.objects.get(organization=acme["organization"])
    assert [(r["number"], r["status"], r["currency"], r["total"]) for r in rows(archive, "invoices.csv")] == [
        (invoice.number, invoice.status, "EUR", str(invoice.total))
    ]
    usage = rows(archive, "usage.csv")
    assert len(usage) == 30 and {r["meter"] for r in usage} == {"calls"}
    event = LogEntry.objects.get(changes__event__1="gdpr.exported")
    assert event.actor == user and event.object_pk == str(acme["organization"].pk)


def test_export_of_an_unknown_customer_is_refused(acme, client_a, staff):
    staff("support")
    response = client_a.post(PAGE + "gdpr/export/", {"export-external_id": "nobody"})
    assert response.status_code == 400 and "No organization has this customer ID." in response.content.decode()
    client_a.logout()
    staff("viewer")
    assert client_a.post(PAGE + "gdpr/export/", {"export-external_id": "acme"}).status_code == 403


def test_erasure_pseudonymizes_people_and_keeps_invoices(acme, client_a, staff):
    organization = acme["organization"]
    Organization.objects.filter(pk=organization.pk).update(billing_email="ap@acme.example")
    member = User.objects.get(email="owner@acme.example")
    User.objects.filter(pk=member.pk).update(name="Ada Lovelace")
    other_org = Organization.objects.create(external_id="globex", name="Globex", currency="EUR")
    shared = UserFactory(email="shared@example.com", name="Grace Hopper")
    MembershipFactory(user=shared, organization=organization)
    MembershipFactory(user=shared, organization=other_org)
    invoice = Invoice.objects.get(organization=organization)
    before = (invoice.number, invoice.total, invoice.amount_due, invoice.customer)
    user = staff("support")
    form = {"erase-external_id": "acme"}
    body = client_a.post(PAGE + "gdpr/erase/", form).content.decode()
    assert effect(body) == [
        ("Organization", "Acme GmbH (acme)"),
        ("People pseudonymized", "owner@acme.example"),
        ("Kept (staff or another customer&#x27;s), membership removed", "1"),
        ("Billing contact email cleared", "ap@acme.example"),
        ("Invoices kept as issued", "1"),
    ]
    assert User.objects.get(pk=member.pk).email == "owner@acme.example"  # the preview wrote nothing
    response = client_a.post(PAGE + "gdpr/erase/", {**form, "confirm": fingerprint(body)})
    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.email, member.name, member.is_active, member.has_usable_password()) == (
        f"erased-{member.pk}@erased.invalid",
        "",
        False,
        False,
    )
    shared.refresh_from_db()
    assert (shared.email, shared.name) == ("shared@example.com", "Grace Hopper")
    assert not Membership.objects.filter(user=shared, organization=organization).exists()
    assert Membership.objects.filter(user=shared, organization=other_org).exists()
    organization.refresh_from_db()
    assert organization.billing_email == "" and organization.name == "Acme GmbH"
    invoice.refresh_from_db()
    assert (invoice.number, invoice.total, invoice.amount_due, invoice.customer) == before
    event = LogEntry.objects.get(changes__event__1="gdpr.erased")
    assert event.actor == user
    assert event.changes["people"] == [None, 1] and event.changes["kept"] == [None, 1]
    written = LogEntry.objects.filter(pk__gte=event.pk)
    assert not any("owner@acme.example" in json.dumps(e.changes) for e in written)
    export = _export(client_a)
    assert [(r["name"], r["email"]) for r in rows(export, "people.csv")] == [("", f"erased-{member.pk}@erased.invalid")]
