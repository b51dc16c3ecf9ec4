"""The portal's plan page (issue 13 flow 5): which plans are offered, preview then confirm for
upgrade, downgrade and cancel, resume, and the refusals (viewer, CSRF, a plan not offered, a
stale preview, dunning's gate, another organization), each leaving the subscription untouched."""

from __future__ import annotations

from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry
from django.test import Client

from billing.models import Membership, Plan, Subscription
from billing.services.subscription import subscription_cancel, subscription_change_plan
from portal import plan_views
from portal.plan_selectors import PlanChangeGate
from tests.factories import OrganizationFactory, PlanFactory, UserFactory
from tests.portal.scenario import NOW, PERIOD_END, seed

pytestmark = pytest.mark.django_db
PLAN = "/organizations/acme/plan/"


@pytest.fixture
def acme(in_a, client_a):
    seeded = seed()
    PlanFactory(code="pro", name="Pro", currency="EUR", base_fee="50.00", per_call=True)
    PlanFactory(code="lite", name="Lite", currency="EUR", base_fee="5.00", per_call=True)
    PlanFactory(code="secret", name="Secret deal", currency="EUR", base_fee="1.00")  # not self-serve
    PlanFactory(code="dollar", name="Dollar", currency="USD", base_fee="20.00")
    PlanFactory(code="retired", name="Retired", currency="EUR", base_fee="20.00")
    Plan.objects.filter(code__in=["basic", "pro", "lite", "dollar", "retired"]).update(self_serve=True)
    Plan.objects.filter(code="retired").update(is_active=False)
    with time_machine.travel(NOW, tick=False):
        client_a.force_login(seeded["user"])
        yield seeded


def plan_code(seeded) -> str:
    return Subscription.objects.get(pk=seeded["subscription"].pk).plan_version.plan.code


def events(seeded) -> list[str]:
    entries = LogEntry.objects.get_for_object(seeded["subscription"]).filter(changes__has_key="event").order_by("pk")
    return [entry.changes["event"][1] for entry in entries]


def test_offers_active_self_serve_plans_in_the_currency_cheapest_first(acme, client_a):
    response = client_a.get(PLAN)
    assert response.status_code == 200
    assert [v.plan.code for v in response.context["options"]] == ["lite", "pro"]
    body = response.content.decode()
    assert "<strong>Basic</strong>" in body and "€10.00 monthly base fee" in body
    # the period [1 Apr, 1 May) in Berlin: its last day is 30 April, not the exclusive end
    assert "Current period 1 Apr 2027 \u2013 30 Apr 2027." in body
    assert 'value="pro"' in body and 'value="secret"' not in body and 'value="dollar"' not in body


def test_upgrade_shows_the_admins_preview_then_confirms(acme, client_a):
    response = client_a.post(f"{PLAN}change/", {"plan": "pro"})
    assert response.status_code == 200
    preview = response.context["preview"]
    expected = subscription_change_plan(
        actor=None,
        subscription=Subscription.objects.get(pk=acme["subscription"].pk),
        plan_version=Plan.objects.get(code="pro").versions.get(),
        preview=True,
    )
    assert preview.kind == "upgrade" and preview.effective_at == NOW
    assert preview.bill.lines == expected.bill.lines
    # the unused 15 days 10 hours of Basic's fee credited, the rest of the period on Pro charged
    assert [(x.kind, x.amount.amount) for x in preview.bill.lines][1:] == [
        ("base_fee_credit", Decimal("-5.14")),
        ("base_fee", Decimal("25.69")),
    ]
    assert preview.bill.subtotal == expected.bill.subtotal
    assert "data-preview" in response.content.decode()
    # the credit line names its date as the portal does (Berlin day), not the engine's ISO date
    assert "<td>Unused time on Basic after 15 Apr 2027</td>" in response.content.decode()
    assert plan_code(acme) == "basic" and events(acme) == []  # a preview writes nothing

    confirmed = client_a.post(f"{PLAN}change/", {"plan": "pro", "confirm": response.context["fingerprint"]})
    assert confirmed.status_code == 302 and confirmed["Location"] == PLAN
    assert plan_code(acme) == "pro"
    entry = LogEntry.objects.get_for_object(acme["subscription"]).get(changes__event__1="subscription.upgrade")
    assert entry.actor == acme["user"]
    page = client_a.get(PLAN).content.decode()
    assert "<strong>Pro</strong>" in page and "Your plan is changing to Pro." in page


def test_downgrade_takes_effect_at_period_end(acme, client_a):
    response = client_a.post(f"{PLAN}change/", {"plan": "lite"})
    assert response.context["preview"].kind == "downgrade"
    assert response.context["preview"].effective_at == PERIOD_END
    client_a.post(f"{PLAN}change/", {"plan": "lite", "confirm": response.context["fingerprint"]})
    subscription = Subscription.objects.get(pk=acme["subscription"].pk)
    assert [(p.plan_version.plan.code, p.starts_at) for p in subscription.phases.order_by("starts_at")][-1] == (
        "lite",
        PERIOD_END,
    )
    assert events(acme) == ["subscription.downgrade"]


def test_a_stale_preview_is_shown_again_not_done(acme, client_a):
    response = client_a.post(f"{PLAN}change/", {"plan": "pro", "confirm": "0" * 64})
    assert response.status_code == 200
    assert response.context["error"] == "The bill changed since it was shown: check it and confirm again."
    assert plan_code(acme) == "basic" and events(acme) == []


@pytest.mark.parametrize("code", ["secret", "dollar", "retired", "basic", "", "nope"])
def test_a_plan_not_offered_is_refused(acme, client_a, code):
    response = client_a.post(f"{PLAN}change/", {"plan": code, "confirm": "x"})
    assert response.status_code == 400
    assert response.context["error"] == "Choose one of the plans listed."
    assert plan_code(acme) == "basic" and events(acme) == []


def test_cancel_at_period_end_then_resume(acme, client_a):
    response = client_a.post(f"{PLAN}cancel/")
    expected = subscription_cancel(
        actor=None, subscription=Subscription.objects.get(pk=acme["subscription"].pk), preview=True
    )
    assert response.context["preview"].effective_at == PERIOD_END == expected.effective_at
    assert response.context["preview"].bill.lines == expected.bill.lines
    assert not Subscription.objects.get(pk=acme["subscription"].pk).cancel_at_period_end

    assert client_a.post(f"{PLAN}cancel/", {"confirm": response.context["fingerprint"]}).status_code == 302
    subscription = Subscription.objects.get(pk=acme["subscription"].pk)
    assert subscription.cancel_at_period_end and subscription.ended_at == PERIOD_END
    page = client_a.get(PLAN).content.decode()
    assert "data-cancel-scheduled" in page and "Resume subscription" in page and "Preview the change" not in page

    assert client_a.post(f"{PLAN}resume/").status_code == 302
    subscription = Subscription.objects.get(pk=acme["subscription"].pk)
    assert not subscription.cancel_at_period_end and subscription.ended_at is None
    assert events(acme) == ["subscription.cancel", "subscription.resume"]


def test_resume_without_a_scheduled_cancellation_is_refused(acme, client_a):
    response = client_a.post(f"{PLAN}resume/")
    assert response.status_code == 400
    assert response.context["error"] == "Only a cancellation scheduled for the period end can be taken back."
    assert events(acme) == []


def test_viewer_sees_the_plan_but_may_not_change_it(acme, tenant_a):
    viewer = UserFactory(email="viewer@acme.example")
    Membership.objects.create(user=viewer, organization=acme["organization"], role="viewer")
    client = Client(HTTP_HOST=tenant_a.get_primary_domain().domain)
    client.force_login(viewer)
    page = client.get(PLAN)
    assert page.status_code == 200 and "Preview the change" not in page.content.decode()
    assert client.post(f"{PLAN}change/", {"plan": "pro"}).status_code == 403
    assert client.post(f"{PLAN}cancel/").status_code == 403
    assert client.post(f"{PLAN}resume/").status_code == 403
    assert plan_code(acme) == "basic" and events(acme) == []


@pytest.mark.parametrize("role", ["admin", "billing"])
def test_admin_and_billing_members_may_change_it(acme, tenant_a, role):
    member = UserFactory(email=f"{role}@acme.example")
    Membership.objects.create(user=member, organization=acme["organization"], role=role)
    client = Client(HTTP_HOST=tenant_a.get_primary_domain().domain)
    client.force_login(member)
    assert client.post(f"{PLAN}change/", {"plan": "pro"}).status_code == 200


def test_post_without_csrf_token_is_refused(acme, tenant_a):
    client = Client(HTTP_HOST=tenant_a.get_primary_domain().domain, enforce_csrf_checks=True)
    client.force_login(acme["user"])
    assert client.post(f"{PLAN}cancel/").status_code == 403
    assert events(acme) == []


def test_dunnings_gate_blocks_plan_changes_with_its_reason(acme, client_a, monkeypatch):
    blocked = PlanChangeGate(allowed=False, reason="Your account is past due: pay the open invoice first.")
    monkeypatch.setattr(plan_views, "plan_change_gate_get", lambda *, organization: blocked)
    page = client_a.get(PLAN).content.decode()
    assert blocked.reason in page and "Preview the change" not in page and "Preview cancellation" in page
    response = client_a.post(f"{PLAN}change/", {"plan": "pro"})
    assert response.status_code == 400 and response.context["error"] == blocked.reason
    assert "preview" not in response.context
    assert plan_code(acme) == "basic" and events(acme) == []


def test_cancel_and_resume_stay_open_during_dunning(acme, client_a, monkeypatch):
    """Cancelling is not a plan change (billing and the API allow it in dunning): the portal
    offers it, and taking it back, while plan changes are blocked."""
    blocked = PlanChangeGate(allowed=False, reason="Plan changes are blocked.")
    monkeypatch.setattr(plan_views, "plan_change_gate_get", lambda *, organization: blocked)
    response = client_a.post(f"{PLAN}cancel/")
    assert response.status_code == 200 and response.context["preview"].effective_at == PERIOD_END
    assert client_a.post(f"{PLAN}cancel/", {"confirm": response.context["fingerprint"]}).status_code == 302
    subscription = Subscription.objects.get(pk=acme["subscription"].pk)
    assert subscription.cancel_at_period_end and subscription.ended_at == PERIOD_END
    page = client_a.get(PLAN).content.decode()
    assert blocked.reason in page and "Resume subscription" in page

    assert client_a.post(f"{PLAN}resume/").status_code == 302
    subscription = Subscription.objects.get(pk=acme["subscription"].pk)
    assert not subscription.cancel_at_period_end and subscription.ended_at is None
    assert plan_code(acme) == "basic"
    assert events(acme) == ["subscription.cancel", "subscription.resume"]


def test_another_organization_is_404(acme, client_a):
    OrganizationFactory(external_id="globex", currency="EUR")
    assert client_a.get("/organizations/globex/plan/").status_code == 404
    assert client_a.post("/organizations/globex/plan/change/", {"plan": "pro"}).status_code == 404


def test_no_subscription_has_nothing_to_change(acme, client_a):
    Subscription.objects.filter(pk=acme["subscription"].pk).update(status="ended")
    page = client_a.get(PLAN).content.decode()
    assert "You have no active subscription." in page
    response = client_a.post(f"{PLAN}change/", {"plan": "pro"})
    assert response.status_code == 400
    assert response.context["error"] == "There is no subscription to change."
