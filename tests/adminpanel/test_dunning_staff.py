"""The staff dunning view (issue 12's "Staff") and the dunning actions on the organization page:
pause / resume, retry now, write off, and the staff suspension. Each is shown before it is done,
done through dunning.services.staff with the signed-in user as actor, audited; refusals write
nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from auditlog.models import LogEntry

from billing.models import Organization, Subscription
from dunning.models import DunningAccount, DunningCase
from dunning.services.run import dunning_run
from invoicing.models import Invoice
from payments.models import Payment
from tests.adminpanel.test_customer360 import effect, fingerprint
from tests.dunning.conftest import email_backend, endpoint, events, gateway  # noqa: F401  (fixtures)
from tests.dunning.test_scenario import FIRST_FAILURE, failed_at_start
from tests.invoicing.conftest import world  # noqa: F401  (the seller, plan and Acme)

pytestmark = pytest.mark.django_db
PAGE = "/staff/organizations/acme/"
AT = FIRST_FAILURE + timedelta(hours=2)


@pytest.fixture
def dunned(world, gateway, email_backend, endpoint):  # noqa: F811  (fixtures)
    """Acme's April invoice (35.70 €) failed once: one open case, past due."""
    invoice, clock = failed_at_start(world, gateway, "soft_decline")
    clock.days(0, 0)
    assert DunningCase.objects.get(invoice=invoice).closed_at is None
    with time_machine.travel(AT, tick=False):
        yield invoice, clock


def events_of(instance) -> list[tuple[str, str | None]]:
    """(event, actor email) of each audit entry of `instance` that names a domain event."""
    return [
        (entry.changes_dict["event"][1], entry.actor.email if entry.actor else None)
        for entry in LogEntry.objects.get_for_object(instance).order_by("id")
        if "event" in entry.changes_dict
    ]


def test_the_dunning_page_shows_stages_risk_and_recovery(dunned, gateway, client_a, staff):  # noqa: F811
    invoice, clock = dunned
    staff("finance")
    body = client_a.get("/staff/dunning/").content.decode()
    assert '<strong data-figure="invoices">1</strong>' in body
    assert '<strong data-figure="at-risk">€35.70</strong>' in body
    assert '<strong data-figure="recovered">none</strong>' in body
    assert '<strong data-figure="recovery-rate">—</strong>' in body
    assert '<tr data-stage="past_due"><td>Past Due</td><td class="num">1</td><td class="num">€35.70</td></tr>' in body
    assert '<tr data-stage="suspended"><td>Suspended</td><td class="num">0</td><td class="num">—</td></tr>' in body
    assert '<a href="/staff/organizations/acme/#dunning-heading">Acme GmbH</a>' in body
    assert "Recovery rate</dt><dd>Of the dunning cases closed this month" in body
    assert '<a href="/staff/dunning/" aria-current="page">Dunning</a>' in body

    gateway.method("pm_card_0341", "ok")
    form = {"invoice": str(invoice.pk)}
    client_a.post(
        PAGE + "dunning/retry/",
        {**form, "confirm": fingerprint(client_a.post(PAGE + "dunning/retry/", form).content.decode())},
    )
    clock.run(AT + timedelta(minutes=5))
    with time_machine.travel(AT + timedelta(minutes=10), tick=False):
        body = client_a.get("/staff/dunning/").content.decode()
    assert '<strong data-figure="invoices">0</strong>' in body
    assert '<strong data-figure="at-risk">none</strong>' in body
    assert '<strong data-figure="recovered">€35.70</strong>' in body
    assert '<strong data-figure="recovery-rate">100.0 %</strong>' in body
    assert "1 of 1 closed" in body
    assert "No organization in dunning." in body


def test_pause_then_resume(dunned, client_a, staff):
    user = staff("finance")
    organization = Organization.objects.get(external_id="acme")
    preview = client_a.post(PAGE + "dunning/pause/", {"pause": "1"}).content.decode()
    assert effect(preview) == [
        ("Dunning", "running → paused"),
        ("Open cases", "1"),
        ("Effect", "no retry, email or stage until resumed; the state stays as it is"),
    ]
    assert DunningAccount.objects.get(organization=organization).paused is False  # shown, not done
    confirm = fingerprint(preview)
    response = client_a.post(PAGE + "dunning/pause/", {"pause": "1", "confirm": confirm})
    assert response.status_code == 302 and response["Location"] == PAGE
    assert DunningAccount.objects.get(organization=organization).paused is True
    assert events_of(organization)[-1] == ("dunning.paused", user.email)
    again = client_a.post(PAGE + "dunning/pause/", {"pause": "1", "confirm": confirm})  # a double click
    assert again.status_code == 400 and "Dunning is paused already." in again.content.decode()
    assert [e for e, _ in events_of(organization)].count("dunning.paused") == 1
    assert "· paused" in client_a.get(PAGE).content.decode()

    preview = client_a.post(PAGE + "dunning/pause/", {"pause": "0"}).content.decode()
    assert effect(preview)[0] == ("Dunning", "paused → running")
    client_a.post(PAGE + "dunning/pause/", {"pause": "0", "confirm": fingerprint(preview)})
    assert DunningAccount.objects.get(organization=organization).paused is False
    assert events_of(organization)[-1] == ("dunning.resumed", user.email)


def test_retry_now_charges_the_default_method(dunned, gateway, client_a, staff):  # noqa: F811
    invoice, _ = dunned
    user = staff("admin")
    gateway.method("pm_card_0341", "ok")
    preview = client_a.post(PAGE + "dunning/retry/", {"invoice": str(invoice.pk)}).content.decode()
    assert effect(preview) == [
        ("Invoice", f"{invoice.number} (Past Due)"),
        ("Charged now", "€35.70"),
        ("With", "the default payment method (a payment in flight is taken instead of a new one)"),
        ("Attempts so far", "1"),
    ]
    assert Payment.objects.filter(invoice=invoice).count() == 1
    client_a.post(PAGE + "dunning/retry/", {"invoice": str(invoice.pk), "confirm": fingerprint(preview)})
    assert list(Payment.objects.filter(invoice=invoice).order_by("number").values_list("number", "status")) == [
        (1, "failed"),
        (2, "succeeded"),
    ]
    assert ("dunning.retry_now", user.email) in events_of(invoice)


def test_write_off_closes_the_case(dunned, client_a, staff):
    invoice, _ = dunned
    user = staff("finance")
    preview = client_a.post(PAGE + "dunning/write-off/", {"invoice": str(invoice.pk)}).content.decode()
    assert effect(preview) == [
        ("Invoice", f"{invoice.number} (Past Due)"),
        ("Written off (uncollectible)", "€35.70"),
        ("Other invoices in dunning", "0"),
        ("Organization", "active again"),
    ]
    confirm = fingerprint(preview)
    client_a.post(PAGE + "dunning/write-off/", {"invoice": str(invoice.pk), "confirm": confirm})
    assert Invoice.objects.get(pk=invoice.pk).status == "uncollectible"
    assert DunningCase.objects.get(invoice=invoice).resolution == "written_off"
    assert DunningAccount.objects.get(organization=invoice.organization).status == "active"
    assert ("dunning.written_off", user.email) in events_of(invoice)
    again = client_a.post(PAGE + "dunning/write-off/", {"invoice": str(invoice.pk), "confirm": confirm})
    assert again.status_code == 400  # the invoice is no longer in dunning: nothing done twice
    assert [e for e, _ in events_of(invoice)].count("dunning.written_off") == 1


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_roles_without_the_permission_write_nothing(dunned, client_a, staff, role):
    invoice, _ = dunned
    staff(role)
    entries = LogEntry.objects.count()
    for url, data in (
        ("dunning/pause/", {"pause": "1"}),
        ("dunning/retry/", {"invoice": str(invoice.pk)}),
        ("dunning/write-off/", {"invoice": str(invoice.pk)}),
        ("suspension/", {"suspend": "1"}),
    ):
        assert client_a.post(PAGE + url, {**data, "confirm": "0" * 64}).status_code == 403
    assert LogEntry.objects.count() == entries
    assert Payment.objects.filter(invoice=invoice).count() == 1
    account = DunningAccount.objects.get(organization=invoice.organization)
    assert (account.paused, account.suspended_by_staff, account.status) == (False, False, "past_due")


def test_malformed_input_is_400_and_writes_nothing(dunned, client_a, staff):
    staff("owner")
    entries = LogEntry.objects.count()
    for url, data in (
        ("dunning/pause/", {"pause": "maybe"}),
        ("dunning/retry/", {"invoice": "x\x00"}),
        ("dunning/write-off/", {"invoice": "999999"}),
        ("suspension/", {"suspend": ""}),
    ):
        assert client_a.post(PAGE + url, data).status_code == 400
    assert LogEntry.objects.count() == entries


def test_suspend_and_reactivate_by_staff(world, client_a, staff, endpoint):  # noqa: F811
    user = staff("finance")
    organization, subscription = world
    preview = client_a.post(PAGE + "suspension/", {"suspend": "1"}).content.decode()
    assert effect(preview) == [
        ("Organization", "Active → suspended"),
        ("Live subscriptions", "1"),
        ("Effect", "usage and plan changes blocked (entitlement serve: false), subscriptions suspended"),
    ]
    assert Organization.objects.get(pk=organization.pk).status == "active"
    confirm = fingerprint(preview)
    client_a.post(PAGE + "suspension/", {"suspend": "1", "confirm": confirm})
    account = DunningAccount.objects.get(organization=organization)
    assert (account.status, account.suspended_by_staff, account.reason) == ("suspended", True, "suspended by staff")
    assert account.blocked_features == ["plan_changes", "usage"]
    assert Organization.objects.get(pk=organization.pk).status == "suspended"
    assert Subscription.objects.get(pk=subscription.pk).status == "suspended"
    assert events() == ["dunning.suspended", "subscription.suspended"]
    assert events_of(organization)[-2:] == [("organization.suspended", user.email), ("dunning.transition", user.email)]
    assert ("subscription.suspended", user.email) in events_of(subscription)
    entitlement = client_a.get("/api/v1/organizations/acme/entitlement").json()
    assert (entitlement["status"], entitlement["serve"], entitlement["reason"]) == (
        "suspended",
        False,
        "suspended by staff",
    )
    again = client_a.post(PAGE + "suspension/", {"suspend": "1", "confirm": confirm})
    assert again.status_code == 400 and "suspended by staff already" in again.content.decode()

    dunning_run()  # the run keeps a staff suspension
    assert DunningAccount.objects.get(organization=organization).status == "suspended"
    assert "Suspended by staff until reactivated." in client_a.get(PAGE).content.decode()

    preview = client_a.post(PAGE + "suspension/", {"suspend": "0"}).content.decode()
    assert effect(preview)[0] == ("Organization", "Suspended → by its invoices")
    client_a.post(PAGE + "suspension/", {"suspend": "0", "confirm": fingerprint(preview)})
    account = DunningAccount.objects.get(organization=organization)
    assert (account.status, account.suspended_by_staff, account.blocked_features) == ("active", False, [])
    assert Organization.objects.get(pk=organization.pk).status == "active"
    assert Subscription.objects.get(pk=subscription.pk).status == "active"
    assert events()[-2:] == ["dunning.recovered", "subscription.reactivated"]
    assert events_of(organization)[-2][0] == "organization.reactivated"
