"""Dunning's pieces beside the scenario: the policy and its overrides, a step once per invoice
(the constraint, a rerun, a run killed inside a step), the entitlement API and its cache, the
command, and the staff actions."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from auditlog.models import LogEntry
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from billing.models import PlanVersion, Subscription
from billing.services.subscription import subscription_cancel, subscription_change_plan
from core.errors import DomainError
from core.models import OutboxMessage
from dunning.models import DunningAccount, DunningCase, DunningPolicy, DunningStep
from dunning.policy import DEFAULT
from dunning.selectors import entitlement_get, policy_for
from dunning.services.run import dunning_run
from dunning.services.staff import dunning_pause, dunning_retry_now, dunning_write_off
from invoicing.models import Invoice
from payments.models import Payment
from portal.plan_selectors import PlanChangeGate, plan_change_gate_get
from tests.dunning.conftest import Clock, card_set
from tests.dunning.test_scenario import failed_at_start
from tests.factories import APIKeyFactory, OrganizationFactory, PlanFactory
from tests.helpers import bearer
from tests.invoicing.test_invoice_api import april_open

DAY = timedelta(days=1)


def test_policy_defaults_and_overrides(world):
    organization, subscription = world
    plan = subscription.plan_version.plan
    assert policy_for(organization_id=organization.pk, plan_id=plan.pk) == DEFAULT
    assert (DEFAULT.retry_days, DEFAULT.notice_days, DEFAULT.final_action) == (
        (1, 3, 5, 7, 10, 14),
        (0, 3, 7, 12, 14, 30),
        "cancel_at_period_end",
    )
    assert [DEFAULT.stage(d) for d in (0, 9, 10, 13, 14, 29, 30)] == [
        "past_due", "past_due", "restricted", "restricted", "suspended", "suspended", "final",
    ]  # fmt: skip
    DunningPolicy.objects.create(final_day=40)
    assert policy_for(organization_id=organization.pk, plan_id=plan.pk).final_day == 40
    DunningPolicy.objects.create(plan=plan, final_day=50, retry_days=[2, 4])
    assert policy_for(organization_id=organization.pk, plan_id=plan.pk).retry_days == (2, 4)
    DunningPolicy.objects.create(organization=organization, final_day=60, final_action="mark_uncollectible")
    chosen = policy_for(organization_id=organization.pk, plan_id=plan.pk)
    assert (chosen.final_day, chosen.final_action, chosen.retry_days) == (60, "mark_uncollectible", DEFAULT.retry_days)
    other = OrganizationFactory(currency="EUR")
    assert policy_for(organization_id=other.pk, plan_id=None).final_day == 40
    # one tenant policy; one scope per row; days in order: refused by the database
    for fields in ({"final_day": 40}, {"plan": plan, "organization": other}, {"suspend_day": 31}):
        with pytest.raises(IntegrityError), transaction.atomic():
            DunningPolicy.objects.create(**fields)


def test_a_step_is_stored_once_per_invoice(world, gateway, email_backend):
    invoice, clock = failed_at_start(world, gateway, "soft_decline")
    clock.run(clock.start + timedelta(hours=1))
    [step] = DunningStep.objects.filter(invoice=invoice)
    assert step.step == "email:d0"
    with pytest.raises(IntegrityError), transaction.atomic():
        DunningStep.objects.create(
            invoice=invoice, organization=world[0], step="email:d0", at=step.at, email_kind="failed"
        )


def test_rerunning_at_the_same_instant_does_nothing(world, gateway, endpoint, email_backend):
    _invoice, clock = failed_at_start(world, gateway, "soft_decline")
    at = clock.start + DAY + timedelta(hours=1)
    clock.run(clock.start + timedelta(hours=1))
    clock.run(at)
    before = (OutboxMessage.objects.count(), DunningStep.objects.count(), Payment.objects.count(), len(mail.outbox))
    assert before[1:] == (2, 2, 1)
    with time_machine.travel(at, tick=False):
        result = dunning_run(at=at)
    assert (result.cases_opened, result.retries, result.emails, result.stages, result.transitions) == (0, 0, 0, 0, [])
    clock.work_outbox(at)
    after = (OutboxMessage.objects.count(), DunningStep.objects.count(), Payment.objects.count(), len(mail.outbox))
    assert after == before and len(gateway.confirms) == 2


def test_a_run_killed_inside_a_retry_leaves_nothing_and_the_rerun_charges_once(
    world, gateway, email_backend, monkeypatch
):
    invoice, clock = failed_at_start(world, gateway, "soft_decline")
    clock.run(clock.start + timedelta(hours=1))
    at = clock.start + DAY + timedelta(hours=1)

    def killed(*args, **kwargs):
        raise SystemExit("killed")

    # the sweep's chunk writes its retries' audit entries last, after their payments, collection
    # messages (payments_retry_open_bulk) and steps: killed there, the chunk leaves none of them
    monkeypatch.setattr("dunning.services.run.audit_events_bulk", killed)
    with time_machine.travel(at, tick=False), pytest.raises(SystemExit):
        dunning_run(at=at)
    assert list(Payment.objects.values_list("number", flat=True)) == [1]
    assert not DunningStep.objects.filter(step__startswith="retry").exists()
    assert not OutboxMessage.objects.filter(key=f"collect:{invoice.pk}:2").exists()
    monkeypatch.undo()
    monkeypatch.setattr("payments.services.collection.gateway_get", lambda name="stripe": gateway)
    clock.run(at)
    clock.run(at)
    assert sorted(Payment.objects.values_list("number", "status")) == [(1, "failed"), (2, "failed")]
    assert list(DunningStep.objects.filter(step__startswith="retry").values_list("step", flat=True)) == ["retry:1"]
    assert len(gateway.confirms) == 2
    assert OutboxMessage.objects.filter(key=f"collect:{invoice.pk}:2").count() == 1


def test_an_email_message_run_twice_sends_once(world, gateway, email_backend):
    from core.services.outbox import outbox_run

    _invoice, clock = failed_at_start(world, gateway, "soft_decline")
    clock.run(clock.start + timedelta(hours=1))
    [message] = OutboxMessage.objects.filter(kind="dunning.email")
    assert len(mail.outbox) == 1
    message.refresh_from_db()
    outbox_run(message)  # redelivered
    assert len(mail.outbox) == 1
    assert DunningStep.objects.get(step="email:d0").emailed_to == "ap@acme.example"


def entitlement(client_a, key: str, external_id: str = "acme"):
    return client_a.get(f"/api/v1/organizations/{external_id}/entitlement", **bearer(key))


def test_entitlement_api_follows_every_transition(world, gateway, client_a, email_backend):
    key = APIKeyFactory(scopes=["read"]).secret
    answer = entitlement(client_a, key)
    assert answer.status_code == 200
    assert answer.json() == {
        "customer": "acme", "status": "active", "serve": True, "blocked_features": [], "blocked_meters": [],
        "since": None, "reason": "",
    }  # fmt: skip
    invoice, clock = failed_at_start(world, gateway, "hard_decline")
    clock.days(0, 0)
    body = entitlement(client_a, key).json()
    assert body == {
        "customer": "acme",
        "status": "past_due",
        "serve": True,
        "blocked_features": [],
        "blocked_meters": [],
        "since": "2027-04-02T01:05:00+00:00",
        "reason": f"payment failed: invoice {invoice.number}",
    }
    clock.days(1, 14)
    body = entitlement(client_a, key).json()
    assert (body["status"], body["serve"], body["blocked_features"], body["since"]) == (
        "suspended", False, ["plan_changes", "usage"], "2027-04-16T01:05:00+00:00",
    )  # fmt: skip
    assert body["reason"] == f"payment failed; usage suspended: invoice {invoice.number}"
    missing = entitlement(client_a, key, "nobody")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


def test_entitlement_is_served_from_the_cache(world, django_assert_max_num_queries):
    entitlement_get(organization_id=world[0].pk)
    with django_assert_max_num_queries(0):
        assert entitlement_get(organization_id=world[0].pk)["serve"] is True


def test_command_runs_one_tenant(world, gateway, tenant_a, email_backend):
    _invoice, _clock = failed_at_start(world, gateway, "soft_decline")
    out = StringIO()
    call_command("dunning_run", "--tenant", tenant_a.slug, "--at", "2027-04-02T01:05:00Z", stdout=out)
    assert out.getvalue() == (
        f"{tenant_a.slug}: 1 cases opened, 0 closed, 0 retries, 1 emails, 0 stages, 1 transitions\n"
        "  acme: active -> past_due\n"
    )
    for bad, why in (
        (["--tenant", "nope"], "No tenant 'nope'."),
        (["--tenant", tenant_a.slug, "--at", "2027-04-02T01:05:00"], "--at must be RFC 3339"),
    ):
        with pytest.raises(CommandError) as refused:
            call_command("dunning_run", *bad, stdout=StringIO())
        assert str(refused.value).startswith(why)
    assert DunningStep.objects.count() == 1


def audit_events(instance) -> list[str]:
    return [entry.changes_dict["event"][1] for entry in LogEntry.objects.get_for_object(instance).order_by("id")
            if "event" in entry.changes_dict]  # fmt: skip


def test_staff_pause_and_retry_now(world, gateway, email_backend):
    invoice, clock = failed_at_start(world, gateway, "soft_decline")
    clock.days(0, 0)
    organization = world[0]
    dunning_pause(actor=None, organization=organization)
    clock.days(1, 20)  # paused: no retry, no email, no stage
    assert DunningStep.objects.filter(invoice=invoice).count() == 1 and len(gateway.confirms) == 1
    assert DunningAccount.objects.get(organization=organization).status == "past_due"
    dunning_pause(actor=None, organization=organization, paused=False)
    assert audit_events(organization)[-3:] == ["dunning.transition", "dunning.paused", "dunning.resumed"]

    gateway.method("pm_card_0341", "ok")
    now = clock.start + 21 * DAY
    with time_machine.travel(now, tick=False):
        payment = dunning_retry_now(actor=None, invoice=invoice)
        assert (payment.number, payment.status) == (2, "succeeded")
        with pytest.raises(DomainError) as refused:
            dunning_retry_now(actor=None, invoice=invoice)  # paid: nothing to retry
        assert refused.value.code == "invoice_not_open"
    clock.run(now + timedelta(hours=1))
    assert DunningAccount.objects.get(organization=organization).status == "active"
    with pytest.raises(DomainError) as refused:
        dunning_retry_now(actor=None, invoice=invoice)
    assert refused.value.code == "not_in_dunning"
    assert len(gateway.confirms) == 2 and "dunning.retry_now" in audit_events(invoice)


def test_write_off_closes_the_case_and_reactivates(world, gateway, email_backend):
    invoice, clock = failed_at_start(world, gateway, "hard_decline")
    clock.days(0, 15)
    assert DunningAccount.objects.get(organization=world[0]).status == "suspended"
    with time_machine.travel(clock.start + 16 * DAY, tick=False):
        case = dunning_write_off(actor=None, invoice=invoice)
    assert (case.resolution, Invoice.objects.get(pk=invoice.pk).status) == ("written_off", "uncollectible")
    assert DunningAccount.objects.get(organization=world[0]).status == "active"
    assert entitlement_get(organization_id=world[0].pk)["serve"] is True
    sent = len(mail.outbox)
    clock.days(16, 40)
    assert len(mail.outbox) == sent  # no notice, no recovery note (nothing was paid)
    with pytest.raises(DomainError) as refused:
        dunning_write_off(actor=None, invoice=invoice)
    assert refused.value.code == "not_in_dunning"
    assert DunningCase.objects.get(invoice=invoice).resolution == "written_off"


def test_finance_sets_the_tenant_policy_in_the_admin_and_viewers_cannot(client_a, staff):
    staff("finance")
    answer = client_a.post(
        "/admin/dunning/dunningpolicy/add/",
        {
            "retry_days": "[2, 4, 8]",
            "plan_changes_blocked_day": "7",
            "suspend_day": "10",
            "final_day": "21",
            "final_action": "mark_uncollectible",
            "email_days": "[0, 5]",
            "retry_on_method_change": "on",
        },
    )
    assert answer.status_code == 302
    chosen = policy_for(organization_id=0, plan_id=None)
    assert (chosen.retry_days, chosen.suspend_day, chosen.final_day, chosen.final_action, chosen.notice_days) == (
        (2, 4, 8), 10, 21, "mark_uncollectible", (0, 5, 10, 21),
    )  # fmt: skip


def test_a_viewer_cannot_change_the_policy(client_a, staff):
    staff("viewer")
    answer = client_a.post("/admin/dunning/dunningpolicy/add/", {"retry_days": "[1]", "email_days": "[0]"})
    assert answer.status_code == 403
    assert not DunningPolicy.objects.exists()


def test_plan_changes_are_refused_from_the_policys_day_until_paid(world, gateway, client_a, email_backend):
    """Billing itself refuses (the service, its preview and the API) from day 10, with the
    reason and since when; cancelling stays possible; paying lifts it."""
    organization, subscription = world
    PlanFactory(code="pro", name="Pro", currency="EUR", base_fee="50.00", per_call=True)
    pro = PlanVersion.objects.get(plan__code="pro")
    key = APIKeyFactory(scopes=["read", "write"]).secret
    invoice, clock = failed_at_start(world, gateway, "hard_decline")
    clock.days(0, 9)
    day9 = clock.start + 9 * DAY + timedelta(hours=3)
    with time_machine.travel(day9, tick=False):
        allowed = subscription_change_plan(actor=None, subscription=subscription, plan_version=pro, preview=True)
    assert allowed.kind == "upgrade"
    assert plan_change_gate_get(organization=organization).allowed is True
    clock.days(10, 10)
    day10 = clock.start + 10 * DAY + timedelta(hours=3)
    message = (
        f"Plan changes are blocked since 12 Apr 2027 because invoice {invoice.number} is overdue: "
        "they are possible again once it is paid."
    )
    entries = LogEntry.objects.count()
    with time_machine.travel(day10, tick=False):
        for preview in (True, False):
            with pytest.raises(DomainError) as refused:
                subscription_change_plan(actor=None, subscription=subscription, plan_version=pro, preview=preview)
            assert (refused.value.code, refused.value.status_code, refused.value.message) == (
                "dunning_blocks_plan_change", 409, message,
            )  # fmt: skip
        for suffix in ("", "/preview"):
            answer = client_a.post(
                f"/api/v1/subscriptions/{subscription.pk}/change-plan{suffix}",
                {"plan": "pro"},
                content_type="application/json",
                **bearer(key),
            )
            assert (answer.status_code, answer.json()["error"]["code"], answer.json()["error"]["message"]) == (
                409, "dunning_blocks_plan_change", message,
            )  # fmt: skip
        assert plan_change_gate_get(organization=organization) == PlanChangeGate(allowed=False, reason=message)
        # not a plan change: a cancellation is still possible (here only previewed)
        assert subscription_cancel(actor=None, subscription=subscription, preview=True).kind == "cancel"
    assert LogEntry.objects.count() == entries
    assert Subscription.objects.get(pk=subscription.pk).plan_version.plan.code == "basic"
    # a new card pays the invoice: the organization is active and may change plan again
    day11 = clock.start + 11 * DAY + timedelta(hours=1)
    with time_machine.travel(day11, tick=False):
        card_set(organization, gateway, "pm_card_new", "ok")
    clock.work_outbox(day11)
    clock.run(day11 + timedelta(hours=1))
    assert DunningAccount.objects.get(organization=organization).status == "active"
    with time_machine.travel(day11 + timedelta(hours=2), tick=False):
        changed = subscription_change_plan(actor=None, subscription=subscription, plan_version=pro)
    assert changed.kind == "upgrade"
    assert Subscription.objects.get(pk=subscription.pk).plan_version.plan.code == "pro"


def test_the_pre_due_reminder_is_optional_and_sent_once_before_the_due_date(world, email_backend):
    """For an invoice paid by hand (no method charged): off by default; with the policy's
    `pre_due_reminder_days` one email from that many days before the due date, never twice."""
    organization = world[0]
    organization.billing_email = "ap@acme.example"
    organization.save()
    invoice = april_open(world)
    due = invoice.due_at
    clock = Clock(start=due)

    def run(at):
        with time_machine.travel(at, tick=False):
            result = dunning_run(at=at)
        clock.work_outbox(at)
        return result.emails

    assert run(due - 3 * DAY) == 0  # no policy asks for it
    DunningPolicy.objects.create(pre_due_reminder_days=3)
    assert run(due - 3 * DAY - timedelta(hours=1)) == 0  # not yet
    assert mail.outbox == []
    assert run(due - 3 * DAY + timedelta(hours=1)) == 1
    assert run(due - 2 * DAY) == 0
    [step] = DunningStep.objects.filter(invoice=invoice)
    assert (step.step, step.email_kind, step.emailed_to) == ("email:predue", "predue", "ap@acme.example")
    [message] = mail.outbox
    due_on = f"{due.day} Apr 2027"
    assert message.subject == f"Seller GmbH: Invoice {invoice.number} is due on {due_on}"
    assert f"Invoice {invoice.number} of €35.70 is due on {due_on}. Please pay it by then." in message.body
    assert not DunningCase.objects.exists()
    # once due and unpaid, dunning proper begins: its day-0 email, no second pre-due reminder
    assert run(due + timedelta(hours=1)) == 1
    assert [s.step for s in DunningStep.objects.filter(invoice=invoice).order_by("id")] == ["email:predue", "email:d0"]
