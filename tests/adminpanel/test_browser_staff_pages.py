"""The staff pages of issue 14 in Chromium (the harness of tests/adminpanel/test_browser_staff.py:
a committed tenant with the portal's Acme scenario, uvicorn, a staff owner signing in with their
second factor): revenue analytics from its snapshots, the compliance dashboard (checks run from
the page, last-passed times in the browser's zone, a GDPR export downloaded), the audit log's
filters and CSV export, and the 360's one-off charge and partial refund against localstripe.
axe-core finds no serious or critical violation at 1280 px nor at 390 px, where no page scrolls
sideways. PORTAL_SHOTS_DIR keeps screenshots."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from config.devstripe import stripe_proxy
from tests.adminpanel.test_browser_staff import staff_sign_in
from tests.factories import (
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    totp_enable,
)
from tests.portal.test_browser_portal import AXE, CHROMIUM, axe_serious, playwright_api, shoot

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("django_db_setup")]
STAFF = "owner@seller.example"
NEW_YORK = "America/New_York"


@pytest.fixture
def site(committed_tenant, django_db_blocker, settings):
    """The portal's scenario (Acme, EUR, this month) in a committed tenant, a staff owner with
    TOTP, the tenant's Stripe keys, and uvicorn with localstripe behind a proxy as its Stripe."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (scripts/system_deps.sh)")
    if not AXE.exists():
        pytest.fail("node_modules/axe-core is missing (scripts/assets.sh)")
    upstream = os.environ.get("LOCALSTRIPE_URL") or os.environ.get("STRIPE_API_BASE", "")
    if not upstream.startswith("http://127.0.0.1"):
        pytest.skip("needs the localstripe that `config.embedded exec` starts (LOCALSTRIPE_URL)")
    from payments.gateways import gateway_settings_forget
    from payments.models import GatewaySettings
    from tests.payments.conftest import PUBLISHABLE_KEY, SECRET_KEY
    from tests.portal.scenario import BERLIN, seed

    tenant, _ = committed_tenant
    now = datetime.now(UTC)
    local = now.astimezone(BERLIN)
    start = datetime(local.year, local.month, 1, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    with stripe_proxy(upstream) as proxy:
        settings.STRIPE_API_BASE = proxy.url  # this process's calls (the payer, the collection)
        gateway_settings_forget()
        with django_db_blocker.unblock(), schema_context(tenant.schema_name):
            seeded = seed(email="member@acme.example", start=start, now=now)
            row = GatewaySettings(stripe_publishable_key=PUBLISHABLE_KEY)
            row.stripe_secret_key_set(SECRET_KEY)
            row.save()
            staff = UserFactory(email=STAFF, staff_role="owner")
            secret = totp_enable(staff)
        connection.set_schema_to_public()
        from tests.live import web_server

        try:
            with web_server(STRIPE_API_BASE=proxy.url) as base:
                port = base.rsplit(":", 1)[1]
                host = tenant.get_primary_domain().domain
                yield {"origin": f"http://{host}:{port}", "tenant": tenant, "secret": secret, "proxy": proxy, **seeded}
        finally:
            gateway_settings_forget()


def sign_in(browser, site, path: str, **context):
    """A context signed in as the staff owner (password, then TOTP) on `path`."""
    origin = site["origin"]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True, **context)
    page = ctx.new_page()
    staff_sign_in(page, origin, path, email=STAFF, secret=site["secret"])
    return ctx, page


def on_phone(browser, ctx, url: str, name: str, **context):
    phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=ctx.storage_state(), **context)
    small = phone.new_page()
    small.goto(url)
    shoot(small, name)
    assert small.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert axe_serious(small) == []
    return small


@contextmanager
def in_tenant(site, django_db_blocker):
    """This process's queries in the site's tenant schema, before the browser starts."""
    with django_db_blocker.unblock(), schema_context(site["tenant"].schema_name):
        yield
    connection.set_schema_to_public()


def in_tenant_thread(site, django_db_blocker, work):
    """`work()` in the site's tenant from another thread, with its own connection: inside
    sync_playwright's block this thread runs an event loop, where Django refuses queries."""

    def run():
        try:
            with django_db_blocker.unblock(), schema_context(site["tenant"].schema_name):
                return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def drawn(page, selector: str) -> bool:
    """Chart.js made a chart on the canvas and put pixels on it (not a blank bitmap)."""
    return page.evaluate(
        """(selector) => {
          const canvas = document.querySelector(selector);
          if (!window.Chart || !Chart.getChart(canvas)) return false;
          const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
          return false;
        }""",
        selector,
    )


# --- revenue analytics ---------------------------------------------------------------------------


def test_revenue_analytics_in_chromium(site, django_db_blocker):
    """Three USD customers on Pro (100.00 a month) besides Acme (EUR, 10.00): two from the 1st of
    last month, one from today; snapshots of today and of last month's end."""
    from adminpanel.analytics import revenue_snapshot_take
    from adminpanel.models import RevenueSnapshot

    now = datetime.now(UTC)
    today = now.date()
    last_month_end = today.replace(day=1) - timedelta(days=1)
    last_month_start = datetime(last_month_end.year, last_month_end.month, 1, tzinfo=UTC)
    with in_tenant(site, django_db_blocker):
        PlanFactory(code="pro", name="Pro", currency="USD", base_fee="100.00")
        for slug, at in (("beta", last_month_start), ("gamma", last_month_start), ("delta", now)):
            organization = OrganizationFactory(external_id=slug, name=slug.title(), currency="USD")
            SubscriptionFactory(organization=organization, plan="pro", at=at)
        assert revenue_snapshot_take(day=today) == 2
        assert revenue_snapshot_take(day=last_month_end) == 2
        usd_today = RevenueSnapshot.objects.get(day=today, currency="USD").figures
        usd_before = RevenueSnapshot.objects.get(day=last_month_end, currency="USD").figures
        eur_today = RevenueSnapshot.objects.get(day=today, currency="EUR").figures
    # what the snapshots hold, the page's source
    assert (usd_today["mrr"], usd_today["arr"], usd_today["customers"]) == ("300.00", "3600.00", 3)
    assert (usd_before["mrr"], usd_before["arr"], usd_before["customers"]) == ("200.00", "2400.00", 2)
    assert (eur_today["mrr"], eur_today["arr"], eur_today["customers"]) == ("10.00", "120.00", 1)

    def figures(page) -> tuple[str, str, str]:
        return tuple(page.locator(f"[data-figure={name}]").inner_text() for name in ("mrr", "arr", "customers"))

    origin = site["origin"]
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            ctx, page = sign_in(browser, site, "/staff/analytics/")
            # the latest day, in the first of its currencies
            assert page.locator("#as_of").input_value() == today.isoformat()
            assert page.locator("#currency").input_value() == "EUR"
            assert figures(page) == ("€10.00", "€120.00", "1")
            for chart in ("chart-mrr", "chart-movements", "chart-aging"):
                page.wait_for_function(
                    "(c) => window.Chart && Chart.getChart(document.querySelector(c))",
                    arg=f"canvas[data-chart={chart}]",
                )
                assert drawn(page, f"canvas[data-chart={chart}]"), chart
            page.select_option("#currency", "USD")
            page.click("button:has-text('Show')")
            page.wait_for_url(f"{origin}/staff/analytics/?as_of={today.isoformat()}&currency=USD")
            assert figures(page) == ("$300.00", "$3,600.00", "3")
            assert page.locator("[data-figure=arpa]").inner_text() == "$100.00"
            assert drawn(page, "canvas[data-chart=chart-mrr]")
            assert axe_serious(page) == []
            shoot(page, "staff-analytics-desktop")
            # as of last month's end: two customers
            page.fill("#as_of", last_month_end.isoformat())
            page.click("button:has-text('Show')")
            page.wait_for_url(f"{origin}/staff/analytics/?as_of={last_month_end.isoformat()}&currency=USD")
            assert figures(page) == ("$200.00", "$2,400.00", "2")
            # a day without a snapshot says so and shows no figure
            page.fill("#as_of", (last_month_end - timedelta(days=3)).isoformat())
            page.click("button:has-text('Show')")
            assert page.locator("[data-figure]").count() == 0
            assert "No snapshot for" in page.locator("main").inner_text()
            on_phone(browser, ctx, f"{origin}/staff/analytics/?currency=USD", "staff-analytics-phone")
        finally:
            browser.close()


# --- compliance ----------------------------------------------------------------------------------


def test_compliance_dashboard_in_chromium(site, django_db_blocker, tmp_path):
    from adminpanel.models import ComplianceCheck

    earlier = datetime(2026, 11, 2, 14, 5, tzinfo=UTC)  # 09:05 in New York (EST)
    with in_tenant(site, django_db_blocker):
        ComplianceCheck.objects.create(
            key="pci_card_numbers", passed=True, ran_at=earlier, last_passed_at=earlier, summary="No card number."
        )
    origin = site["origin"]
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            ctx, page = sign_in(browser, site, "/staff/compliance/", timezone_id=NEW_YORK, locale="en-US")
            rows = page.locator("tr[data-check]")
            assert rows.count() == 6
            assert page.locator("tr[data-check=pci_card_numbers] [data-last-passed]").inner_text() == (
                f"2 Nov 2026 09:05 {NEW_YORK}"
            )
            assert page.locator("tr[data-check=pci_card_numbers] [data-last-passed] time").get_attribute("title") == (
                "2 Nov 2026 14:05 UTC"
            )
            assert page.locator("tr[data-check=pci_tls] [data-result]").inner_text() == "never run"
            assert page.locator("tr[data-check=pci_tls] [data-last-passed]").inner_text() == "never"

            page.click("button:has-text('Run the checks now')")
            page.wait_for_selector("text=6 checks run:")
            stored = in_tenant_thread(
                site, django_db_blocker, lambda: {row.key: row for row in ComplianceCheck.objects.all()}
            )
            assert len(stored) == 6
            zone = ZoneInfo(NEW_YORK)
            for key, row in stored.items():
                cell = page.locator(f"tr[data-check={key}]")
                assert cell.locator("[data-result]").inner_text() == ("pass" if row.passed else "fail"), key
                expected = (
                    f"{row.last_passed_at.astimezone(zone):%-d %b %Y %H:%M} {NEW_YORK}"
                    if row.last_passed_at
                    else "never"
                )
                assert cell.locator("[data-last-passed]").inner_text() == expected, key
            # card numbers passed again: its last pass moved from November to now
            assert stored["pci_card_numbers"].passed and stored["pci_card_numbers"].last_passed_at > earlier
            assert axe_serious(page) == []
            shoot(page, "staff-compliance-desktop")

            # GDPR: Acme's data, confirmed, downloaded as a ZIP
            page.click("summary:has-text('Export a customer')")
            page.fill("input[name=export-external_id]", "acme")
            page.click("button:has-text('Review: export')")
            assert page.locator("[data-effect]").all_inner_texts() == [
                "Acme GmbH (acme)",
                "1",
                "1",
                "0",
                "organization.json, people.csv, invoices.csv, payments.csv, usage.csv",
            ]
            assert axe_serious(page) == []
            shoot(page, "staff-gdpr-confirm-desktop")
            with page.expect_download() as info:
                page.click("button:has-text('Confirm: export personal data')")
            download = info.value
            assert download.suggested_filename == "acme-personal-data.zip"
            path = tmp_path / "export.zip"
            download.save_as(path)
            with zipfile.ZipFile(path) as archive:
                assert sorted(archive.namelist()) == [
                    "invoices.csv",
                    "organization.json",
                    "payments.csv",
                    "people.csv",
                    "usage.csv",
                ]
                people = archive.read("people.csv").decode()
            assert "member@acme.example" in people

            on_phone(
                browser,
                ctx,
                f"{origin}/staff/compliance/",
                "staff-compliance-phone",
                timezone_id=NEW_YORK,
                locale="en-US",
            )
        finally:
            browser.close()


# --- audit log -----------------------------------------------------------------------------------


def test_audit_log_filter_and_export_in_chromium(site, django_db_blocker):
    from auditlog.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    from billing.models import Organization

    with in_tenant(site, django_db_blocker):
        jane = UserFactory(email="jane@seller.example", staff_role="finance")
        acme = Organization.objects.get(external_id="acme")
        globex = OrganizationFactory(external_id="globex", name="Globex")
        kind = ContentType.objects.get_for_model(Organization)

        def entry(obj, *, actor, action, at, changes):
            return LogEntry.objects.create(
                content_type=kind,
                object_pk=str(obj.pk),
                object_id=obj.pk,
                object_repr=str(obj),
                action=action,
                changes=changes,
                actor=actor,
                actor_email=getattr(actor, "email", None),
                timestamp=at,
            ).pk

        update, create = LogEntry.Action.UPDATE, LogEntry.Action.CREATE
        a = entry(
            acme,
            actor=jane,
            action=update,
            at=datetime(2026, 10, 1, 10, tzinfo=UTC),
            changes={"name": ["Acme", "Acme GmbH"]},
        )
        b = entry(
            acme,
            actor=jane,
            action=update,
            at=datetime(2026, 10, 5, 23, 59, 30, tzinfo=UTC),
            changes={"billing_email": ["", "ap@acme.example"]},
        )
        entry(
            acme,
            actor=None,
            action=update,
            at=datetime(2026, 10, 3, tzinfo=UTC),
            changes={"status": ["active", "suspended"]},
        )
        entry(acme, actor=jane, action=create, at=datetime(2026, 10, 2, tzinfo=UTC), changes={"name": [None, "Acme"]})
        entry(acme, actor=jane, action=update, at=datetime(2026, 10, 6, tzinfo=UTC), changes={"name": ["x", "y"]})
        entry(
            globex, actor=jane, action=update, at=datetime(2026, 10, 2, tzinfo=UTC), changes={"name": ["G", "Globex"]}
        )
        acme_pk = acme.pk
    origin = site["origin"]
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            ctx, page = sign_in(browser, site, "/staff/audit/")
            page.fill("input[name=actor]", "jane@")
            page.select_option("select[name=object_type]", "billing.organization")
            page.fill("input[name=object_id]", str(acme_pk))
            page.select_option("select[name=action]", str(update))
            page.fill("input[name=since]", "2026-10-01")
            page.fill("input[name=until]", "2026-10-05")
            page.click("button:has-text('Filter')")
            page.wait_for_url(f"{origin}/staff/audit/?*")
            rows = page.locator("tbody tr[data-audit]")
            assert [int(pk) for pk in (rows.nth(i).get_attribute("data-audit") for i in range(rows.count()))] == [b, a]
            assert [r.split("\t") for r in rows.all_inner_texts()] == [
                [
                    "5 Oct 2026 23:59:30 UTC",
                    "jane@seller.example",
                    "update",
                    f"billing.organization {acme_pk}: Acme GmbH (acme)",
                    "billing_email: ap@acme.example",
                ],
                [
                    "1 Oct 2026 10:00:00 UTC",
                    "jane@seller.example",
                    "update",
                    f"billing.organization {acme_pk}: Acme GmbH (acme)",
                    "name: Acme → Acme GmbH",
                ],
            ]
            assert axe_serious(page) == []
            shoot(page, "staff-audit-filtered-desktop")

            with page.expect_download() as info:
                page.click("text=Export CSV")
            download = info.value
            assert download.suggested_filename == "audit-log.csv"
            table = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
            assert table == [
                ["timestamp_utc", "actor", "action", "object_type", "object_id", "object", "changes", "remote_addr"],
                [
                    "2026-10-05T23:59:30+00:00",
                    "jane@seller.example",
                    "update",
                    "billing.organization",
                    str(acme_pk),
                    "Acme GmbH (acme)",
                    "billing_email: ap@acme.example",
                    "",
                ],
                [
                    "2026-10-01T10:00:00+00:00",
                    "jane@seller.example",
                    "update",
                    "billing.organization",
                    str(acme_pk),
                    "Acme GmbH (acme)",
                    "name: Acme → Acme GmbH",
                    "",
                ],
            ]
            on_phone(browser, ctx, page.url, "staff-audit-filtered-phone")
        finally:
            browser.close()


# --- customer 360: one-off charge and partial refund -------------------------------------------


def test_one_off_charge_and_partial_refund_in_chromium(site, django_db_blocker):
    from invoicing.models import CreditNote, Invoice
    from payments.models import Payment, Refund
    from tests.payments.conftest import CARD_OK, collect_all, payer_with
    from tests.portal.scenario import BERLIN

    with in_tenant(site, django_db_blocker):
        payer_with(site["organization"], site["proxy"], card=CARD_OK)
    origin = site["origin"]
    url = f"{origin}/staff/organizations/acme/"
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            ctx, page = sign_in(browser, site, "/staff/organizations/acme/")
            page.click("summary:has-text('Charge a one-off amount')")
            form = "form[action$='/one-off-charges/']"
            page.fill(f"{form} input[name=description]", "Onboarding workshop")
            page.fill(f"{form} input[name=amount]", "1250.00")
            page.click("button:has-text('Review: charge a one-off amount')")
            assert page.locator("[data-effect]").all_inner_texts() == [
                "1",
                "Onboarding workshop",
                "€1,250.00",
                "€0.00, no rate applies",
                "€1,250.00",
                "€0.00",
                "€1,250.00",
                "charged to the default payment method",
            ]
            assert axe_serious(page) == []
            shoot(page, "staff-one-off-confirm-desktop")
            page.click("button:has-text('Confirm: charge a one-off amount')")
            page.wait_for_url(url)

            def collect():
                collect_all()  # the worker's part: the card charged at localstripe
                invoice = Invoice.objects.get(lines__kind="one_off")
                return invoice, Payment.objects.get(invoice=invoice)

            invoice, payment = in_tenant_thread(site, django_db_blocker, collect)
            assert (invoice.status, payment.status, payment.amount) == ("paid", "succeeded", Decimal("1250.0000"))
            page.reload()
            row = page.locator(f"tr[data-invoice='{invoice.pk}']").inner_text().split("\t")
            issued = invoice.issued_at.astimezone(BERLIN).strftime("%-d %b %Y %H:%M %Z")
            # number, status, issued (in Acme's zone), total, due, paid
            assert row[:6] == [invoice.number, "Paid", issued, "€1,250.00", "€0.00", "€1,250.00"]
            shoot(page, "staff-one-off-done-desktop")

            page.click("summary:has-text('Refund a payment')")
            form = "form[action$='/refunds/']"
            page.select_option(f"{form} select[name=payment]", str(payment.pk))
            page.fill(f"{form} input[name=amount]", "100.00")
            page.fill(f"{form} input[name=reason]", "Workshop cut short")
            page.click("button:has-text('Review: refund a payment')")
            assert page.locator("[data-effect]").all_inner_texts() == [
                f"{invoice.number} attempt 1: €1,250.00",
                "€0.00",
                "in part: €100.00 asked",
                "net €100.00, tax €0.00",
                "€100.00",
                "€100.00",
                "€1,150.00",
            ]
            assert axe_serious(page) == []
            shoot(page, "staff-refund-confirm-desktop")
            page.click("button:has-text('Confirm: refund a payment')")
            page.wait_for_url(url)
            refund, note = in_tenant_thread(
                site, django_db_blocker, lambda: (Refund.objects.get(), CreditNote.objects.get())
            )
            assert (refund.credit_note_id, refund.status) == (note.pk, "succeeded")
            shown = page.locator(f"tr[data-credit-note='{note.pk}']").inner_text().split("\t")
            created = note.created_at.astimezone(BERLIN).strftime("%-d %b %Y %H:%M %Z")
            assert shown == [
                note.number,
                invoice.number,
                created,
                "Workshop cut short",
                "€100.00",
                "€100.00 paid back, succeeded",
            ]
            payment_row = page.locator(f"tr[data-payment='{payment.pk}']").inner_text().split("\t")
            assert payment_row[4:6] == ["€1,250.00", "€100.00"]  # amount, refunded
            assert axe_serious(page) == []
            shoot(page, "staff-refund-done-desktop")
            on_phone(browser, ctx, url, "staff-organization-refunded-phone")
        finally:
            browser.close()
