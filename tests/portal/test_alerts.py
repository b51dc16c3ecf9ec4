"""Alerts (issue 13 flow 4) and usage limits (flow 7): evaluated from the drain path, once per
period, with the webhook, the email (at most one per alert per day), the entitlement's blocked
meters and the next period unblocking; the page's forms and refusals.

Acme (tests.portal.scenario) has 140 calls and 11.40 EUR of spend at NOW (April 15th 2027)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test import Client

from billing.models import Membership, PlanUsageLimit, UsageCap, UsageLimitReached
from core.models import OutboxMessage
from core.services.webhook_endpoint import webhook_endpoint_create
from dunning.selectors import entitlement_get, entitlement_key
from metering.live import usage_changed_notify
from metering.management.commands.metering_drain import Command as DrainCommand
from metering.models import Meter
from metering.services.drain import DrainResult
from portal import alerts as alerts_module
from portal.alerts import alerts_evaluate, limits_evaluate, usage_email_send
from portal.models import UsageAlert, UsageAlertFiring
from portal.tasks import alerts_evaluate_task
from tests.factories import APIKeyFactory, MeterFactory, PlanFactory, UserFactory
from tests.helpers import bearer
from tests.portal.scenario import NOW, PERIOD_END, START, seed, store_events

pytestmark = pytest.mark.django_db
PAGE = "/organizations/acme/alerts/"


@pytest.fixture
def acme(in_a, client_a, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    seeded = seed()
    seeded["organization"].billing_email = "billing@acme.example"
    seeded["organization"].save(update_fields=["billing_email"])
    webhook_endpoint_create(url="https://erp.example.com/hooks")
    with time_machine.travel(NOW, tick=False):
        client_a.force_login(seeded["user"])
        yield seeded
    cache.delete(entitlement_key(seeded["organization"].pk))


@pytest.fixture
def queued(monkeypatch):
    """The alert tasks the drain path queued (organization ids), instead of the broker."""
    calls: list[int] = []
    monkeypatch.setattr(alerts_evaluate_task, "delay", calls.append)
    yield calls
    for organization_id in set(calls):
        alerts_module.alerts_evaluate_started(organization_id)


def hooks(event_type: str) -> list[dict]:
    return [
        m.payload["event"]["data"]
        for m in OutboxMessage.objects.filter(kind="webhook.deliver").order_by("id")
        if m.payload["event"]["type"] == event_type
    ]


def emails() -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(kind=alerts_module.EMAIL_KIND).order_by("id"))


def calls(n: int, prefix: str, at: datetime) -> None:
    store_events("acme", [(f"{prefix}-{i}", at + timedelta(seconds=i), {"region": "eu"}) for i in range(n)])


def meter() -> Meter:
    return Meter.objects.get(code="calls")


# --- alerts ----------------------------------------------------------------------------------------


def test_usage_alert_fires_once_from_the_drain_path_with_webhook_and_one_email(acme, queued):
    org = acme["organization"]
    alert = UsageAlert.objects.create(organization=org, metric="usage", meter=meter(), threshold=Decimal(150))
    calls(9, "a", NOW - timedelta(minutes=30))  # 149: below
    usage_changed_notify({"acme"})
    assert queued == [org.pk]
    assert alerts_evaluate_task(org.pk) == 0
    calls(1, "b", NOW - timedelta(minutes=20))  # 150: reached
    usage_changed_notify({"acme", "someone-else"})
    assert queued == [org.pk, org.pk]
    assert alerts_evaluate_task(org.pk) == 1
    calls(5, "c", NOW - timedelta(minutes=10))  # past it: no second firing this period
    usage_changed_notify({"acme"})
    assert alerts_evaluate_task(org.pk) == 0

    firing = UsageAlertFiring.objects.get()
    assert (firing.alert_id, firing.period_start, firing.period_end, firing.value) == (
        alert.pk, START, PERIOD_END, Decimal(150),
    )  # fmt: skip
    assert hooks("usage.threshold_reached") == [
        {
            "customer": "acme",
            "alert": {
                "id": alert.pk, "metric": "usage", "meter": "calls",
                "threshold": "150", "budget": None, "percent": None,
            },
            "threshold": "150",
            "value": "150",
            "currency": None,
            "period_start": START.isoformat(),
            "period_end": PERIOD_END.isoformat(),
            "fired_at": NOW.isoformat(),
        }
    ]  # fmt: skip
    [message] = emails()
    assert message.payload == {"kind": "alert", "id": firing.pk}
    assert usage_email_send(kind="alert", row_id=firing.pk) is True
    assert usage_email_send(kind="alert", row_id=firing.pk) is False  # the outbox is at least once
    assert [(m.subject, m.to) for m in mail.outbox] == [
        ("Alert: API calls reached 150 this period", [org.billing_email])
    ]
    assert "is 150, which reached the alert threshold of 150" in mail.outbox[0].body


def test_coalesced_one_task_per_organization_until_it_starts(acme, queued):
    org = acme["organization"]
    UsageAlert.objects.create(organization=org, metric="usage", meter=meter(), threshold=Decimal(1000))
    usage_changed_notify({"acme"})
    usage_changed_notify({"acme"})
    assert queued == [org.pk]  # the second change finds one waiting
    alerts_evaluate_task(org.pk)
    usage_changed_notify({"acme"})
    assert queued == [org.pk, org.pk]  # a change after the task started queues another


def test_organizations_without_alerts_or_limits_queue_nothing(acme, queued):
    usage_changed_notify({"acme"})
    assert queued == []
    assert alerts_module.organizations_watched({"acme"}) == []


def test_percent_of_a_spend_budget_priced_by_the_engine(acme):
    org = acme["organization"]
    low = UsageAlert.objects.create(
        organization=org, metric="spend", budget=Decimal(20), percent=Decimal(50)
    )  # 10.00 EUR: reached by 11.40
    UsageAlert.objects.create(organization=org, metric="spend", threshold=Decimal("11.41"))  # not yet
    [firing] = alerts_evaluate(organization_id=org.pk)
    assert (firing.alert_id, firing.threshold, firing.value) == (low.pk, Decimal(10), Decimal("11.40"))
    [payload] = hooks("usage.threshold_reached")
    assert (payload["alert"], payload["threshold"], payload["value"], payload["currency"]) == (
        {"id": low.pk, "metric": "spend", "meter": None, "threshold": None, "budget": "20", "percent": "50"},
        "10", "11.4", "EUR",
    )  # fmt: skip
    assert alerts_evaluate(organization_id=org.pk) == []


def test_next_period_fires_again_but_at_most_one_email_per_alert_per_day(acme):
    org = acme["organization"]
    alert = UsageAlert.objects.create(organization=org, metric="usage", meter=meter(), threshold=Decimal(5))
    last_minute = PERIOD_END - timedelta(minutes=1)  # 23:59 on April 30th in Berlin
    with time_machine.travel(last_minute, tick=False):
        assert len(alerts_evaluate(organization_id=org.pk)) == 1
    first_minute = PERIOD_END + timedelta(minutes=1)  # 00:01 on May 1st in Berlin: a new period
    with time_machine.travel(first_minute, tick=False):
        assert alerts_evaluate(organization_id=org.pk) == []  # nothing used in May yet
        calls(5, "may", PERIOD_END)
        [may] = alerts_evaluate(organization_id=org.pk)
    assert may.period_start == PERIOD_END
    assert list(UsageAlertFiring.objects.filter(alert=alert).values_list("period_start", flat=True)) == [
        PERIOD_END, START,
    ]  # fmt: skip
    assert len(hooks("usage.threshold_reached")) == 2
    # Both fired on April 30th/May 1st local time: different days, two emails.
    assert len(emails()) == 2
    with time_machine.travel(first_minute + timedelta(hours=2), tick=False):
        # The same alert firing again the same local day (its May row removed to force it).
        UsageAlertFiring.objects.filter(alert=alert, period_start=PERIOD_END).delete()
        [again] = alerts_evaluate(organization_id=org.pk)
    assert again.alert_id == alert.pk
    assert len(hooks("usage.threshold_reached")) == 3
    assert len(emails()) == 2  # the same alert, the same local day (May 1st): no second email


def test_drainer_tells_the_listeners_after_a_drain(acme, queued):
    org = acme["organization"]
    UsageAlert.objects.create(organization=org, metric="usage", meter=meter(), threshold=Decimal(1))
    command = DrainCommand()
    command.to_publish = set()
    command._record(connection.tenant, DrainResult(batches=1, events=1, inserted=1, customers={"acme"}))
    assert queued == [org.pk]


# --- limits ----------------------------------------------------------------------------------------


def entitlement(client, key):
    return client.get("/api/v1/organizations/acme/entitlement", **bearer(key)).json()


def test_hard_cap_blocks_the_meter_in_the_entitlement_and_the_next_period_unblocks(acme, client_a):
    org = acme["organization"]
    key = APIKeyFactory(scopes=["read"]).secret
    UsageCap.objects.create(organization=org, meter=meter(), limit=Decimal(145), hard=True)
    assert entitlement(client_a, key)["blocked_meters"] == []  # cached now
    calls(4, "a", NOW - timedelta(minutes=5))  # 144
    usage_changed_notify({"acme"})
    assert UsageLimitReached.objects.count() == 0
    calls(1, "b", NOW - timedelta(minutes=4))  # 145: the allowance is used up
    usage_changed_notify({"acme"})
    body = entitlement(client_a, key)
    assert (body["serve"], body["blocked_meters"]) == (
        True,
        [{"meter": "calls", "limit": "145", "source": "cap", "until": PERIOD_END.isoformat()}],
    )
    assert hooks("usage.limit_reached") == [
        {
            "customer": "acme", "meter": "calls", "limit": "145", "hard": True, "source": "cap", "value": "145",
            "period_start": START.isoformat(), "period_end": PERIOD_END.isoformat(), "reached_at": NOW.isoformat(),
        }
    ]  # fmt: skip
    # Events past the cap are still accepted and stored.
    calls(3, "c", NOW - timedelta(minutes=3))
    usage_changed_notify({"acme"})
    assert UsageLimitReached.objects.count() == 1
    assert len(hooks("usage.limit_reached")) == 1
    [row] = UsageLimitReached.objects.all()
    assert usage_email_send(kind="limit", row_id=row.pk) is True
    assert mail.outbox[0].subject == "Limit reached: API calls (145 a period)"
    # The cached answer must not outlive the block: ten minutes before the period ends, it is
    # cached for those ten minutes, not the usual hour.
    with time_machine.travel(PERIOD_END - timedelta(minutes=10), tick=False):
        cache.delete(entitlement_key(org.pk))
        assert entitlement_get(organization_id=org.pk)["blocked_meters"][0]["meter"] == "calls"
    cache_key = cache.make_and_validate_key(entitlement_key(org.pk))
    assert 590 <= cache._cache.get_client(cache_key).ttl(cache_key) <= 600
    # The next period: unblocked.
    with time_machine.travel(PERIOD_END + timedelta(seconds=1), tick=False):
        cache.delete(entitlement_key(org.pk))  # what the TTL does in real time
        assert entitlement_get(organization_id=org.pk)["blocked_meters"] == []
        assert limits_evaluate(organization_id=org.pk) == []


def test_soft_cap_notifies_without_blocking(acme):
    org = acme["organization"]
    UsageCap.objects.create(organization=org, meter=meter(), limit=Decimal(100), hard=False)
    [row] = limits_evaluate(organization_id=org.pk)
    assert (row.hard, row.source, row.value) == (False, "cap", Decimal(140))
    assert [h["hard"] for h in hooks("usage.limit_reached")] == [False]
    assert entitlement_get(organization_id=org.pk)["blocked_meters"] == []


def test_plan_limit_blocks_and_the_lower_hard_cap_wins(acme):
    org = acme["organization"]
    plan = acme["subscription"].plan_version.plan
    PlanUsageLimit.objects.create(plan=plan, meter=meter(), limit=Decimal(500))
    assert limits_evaluate(organization_id=org.pk) == []
    UsageCap.objects.create(organization=org, meter=meter(), limit=Decimal(120), hard=True)
    [row] = limits_evaluate(organization_id=org.pk)
    assert (row.limit, row.source) == (Decimal(120), "cap")
    UsageCap.objects.all().delete()
    UsageLimitReached.objects.all().delete()
    PlanUsageLimit.objects.filter(plan=plan).update(limit=Decimal(140))
    [row] = limits_evaluate(organization_id=org.pk)
    assert (row.limit, row.source, row.hard) == (Decimal(140), "plan", True)


# --- the page --------------------------------------------------------------------------------------


def test_page_lists_alerts_limits_and_fired(acme, client_a):
    org = acme["organization"]
    alert = UsageAlert.objects.create(organization=org, metric="usage", meter=meter(), threshold=Decimal(100))
    UsageCap.objects.create(organization=org, meter=meter(), limit=Decimal(130), hard=True)
    alerts_evaluate(organization_id=org.pk)
    limits_evaluate(organization_id=org.pk)
    page = client_a.get(PAGE).content.decode()
    assert f'data-firing="{alert.pk}"' in page
    assert 'data-blocked="calls"' in page
    assert "<strong>Blocked</strong>" in page
    flat = " ".join(page.split())
    assert "API calls</strong> reached 100 (140 when it fired)" in flat
    assert '<td class="num">140</td> <td class="num">none</td>' in flat  # used, no plan limit


def test_page_reads_the_plan_limits_once_whatever_the_number_of_meters(acme, client_a):
    from django.test.utils import CaptureQueriesContext

    PlanUsageLimit.objects.create(plan=acme["subscription"].plan_version.plan, meter=meter(), limit=Decimal(500))
    client_a.get(PAGE)  # the session's first read after login
    with CaptureQueriesContext(connection) as one:
        page = client_a.get(PAGE).content.decode()
    assert '<td class="num">140</td> <td class="num">500</td>' in " ".join(page.split())  # used, the plan's limit
    MeterFactory(code="storage", name="Storage", event_type="store")
    MeterFactory(code="seats", name="Seats", event_type="seat")
    with CaptureQueriesContext(connection) as three:
        assert client_a.get(PAGE).status_code == 200
    assert len(three.captured_queries) == len(one.captured_queries)


def test_adding_an_alert_and_a_cap_through_the_forms(acme, client_a, queued):
    response = client_a.post(
        f"{PAGE}add/", {"metric": "spend", "meter": "", "kind": "percent", "budget": "100", "percent": "80"}
    )
    assert response.status_code == 302
    alert = UsageAlert.objects.get()
    assert (alert.metric, alert.meter, alert.threshold, alert.budget, alert.percent) == (
        "spend", None, None, Decimal(100), Decimal(80),
    )  # fmt: skip
    response = client_a.post(f"{PAGE}caps/", {"meter": "calls", "limit": "150", "hard": "on"})
    assert response.status_code == 302
    cap = UsageCap.objects.get()
    assert (cap.limit, cap.hard) == (Decimal(150), True)
    client_a.post(f"{PAGE}caps/", {"meter": "calls", "limit": "100", "hard": "on"})
    assert UsageLimitReached.objects.filter(hard=True).count() == 0  # evaluated on commit, not in this test
    limits_evaluate(organization_id=acme["organization"].pk)
    assert UsageLimitReached.objects.filter(hard=True).count() == 1
    # Raising the cap forgets this period's block.
    client_a.post(f"{PAGE}caps/", {"meter": "calls", "limit": "1000", "hard": "on"})
    assert UsageLimitReached.objects.count() == 0
    assert client_a.post(f"{PAGE}caps/remove/", {"meter": "calls"}).status_code == 302
    assert UsageCap.objects.count() == 0
    assert client_a.post(f"{PAGE}remove/", {"alert": str(alert.pk)}).status_code == 302
    assert UsageAlert.objects.count() == 0


@pytest.mark.parametrize(
    "path, body",
    [
        ("add/", {"metric": "usage", "meter": "", "kind": "absolute", "threshold": "10"}),
        ("add/", {"metric": "usage", "meter": "calls", "kind": "absolute", "threshold": "-1"}),
        ("add/", {"metric": "usage", "meter": "calls", "kind": "absolute", "threshold": "1e999"}),
        ("add/", {"metric": "spend", "kind": "percent", "budget": "100"}),
        ("add/", {"metric": "bogus", "kind": "absolute", "threshold": "1"}),
        ("add/", {"metric": "usage", "meter": "nope", "kind": "absolute", "threshold": "1"}),
        ("remove/", {"alert": "x"}),
        ("remove/", {"alert": "999999"}),
        ("caps/", {"meter": "calls", "limit": "abc"}),
        ("caps/", {"meter": "calls", "limit": "-5"}),
        ("caps/", {"meter": "nope", "limit": "5"}),
        ("caps/remove/", {"meter": "calls"}),
    ],
)
def test_malformed_input_is_a_400_with_nothing_written(acme, client_a, path, body):
    response = client_a.post(f"{PAGE}{path}", body)
    assert response.status_code == 400
    assert b"data-alerts-error" in response.content
    assert (UsageAlert.objects.count(), UsageCap.objects.count()) == (0, 0)


def test_cap_above_the_plan_limit_refused(acme, client_a):
    PlanUsageLimit.objects.create(plan=acme["subscription"].plan_version.plan, meter=meter(), limit=Decimal(500))
    response = client_a.post(f"{PAGE}caps/", {"meter": "calls", "limit": "501"})
    assert response.status_code == 400
    assert "Your plan allows at most 500 a period" in response.content.decode()
    assert UsageCap.objects.count() == 0


def test_viewer_looks_but_cannot_change(acme, in_a):
    viewer = UserFactory(email="viewer@acme.example")
    Membership.objects.create(user=viewer, organization=acme["organization"], role="viewer")
    client = Client(HTTP_HOST=connection.tenant.get_primary_domain().domain)
    client.force_login(viewer)
    assert client.get(PAGE).status_code == 200
    assert client.post(f"{PAGE}add/", {"metric": "spend", "kind": "absolute", "threshold": "5"}).status_code == 403
    assert client.post(f"{PAGE}caps/", {"meter": "calls", "limit": "5"}).status_code == 403
    assert (UsageAlert.objects.count(), UsageCap.objects.count()) == (0, 0)


def test_csrf_required(acme, in_a):
    client = Client(HTTP_HOST=connection.tenant.get_primary_domain().domain, enforce_csrf_checks=True)
    client.force_login(acme["user"])
    assert client.post(f"{PAGE}caps/", {"meter": "calls", "limit": "5"}).status_code == 403
    assert UsageCap.objects.count() == 0


def test_another_organization_is_404(acme, client_a):
    assert client_a.get("/organizations/globex/alerts/").status_code == 404


# --- the seller's limits ---------------------------------------------------------------------------


def test_plan_limits_api_replaces_the_list_and_validates(acme, client_a):
    key = APIKeyFactory(name="w", scopes=["read", "write"]).secret
    url = "/api/v1/plans/basic/limits"
    body = {"limits": [{"meter": "calls", "limit": "1000"}]}
    response = client_a.put(url, body, content_type="application/json", **bearer(key))
    assert (response.status_code, response.json()) == (
        200,
        {"plan": "basic", "limits": [{"meter": "calls", "limit": "1000"}]},
    )
    assert client_a.get(url, **bearer(key)).json() == {"plan": "basic", "limits": [{"meter": "calls", "limit": "1000"}]}
    for bad, code in [
        ({"limits": [{"meter": "nope", "limit": "1"}]}, "unknown_meter"),
        ({"limits": [{"meter": "calls", "limit": "1"}, {"meter": "calls", "limit": "2"}]}, "duplicate_meter"),
    ]:
        response = client_a.put(url, bad, content_type="application/json", **bearer(key))
        assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    response = client_a.put(
        url, {"limits": [{"meter": "calls", "limit": "-1"}]}, content_type="application/json", **bearer(key)
    )
    assert response.status_code == 400
    assert list(PlanUsageLimit.objects.values_list("limit", flat=True)) == [Decimal(1000)]
    assert client_a.put(url, {"limits": []}, content_type="application/json", **bearer(key)).json()["limits"] == []
    assert PlanUsageLimit.objects.count() == 0


def test_plan_limits_in_the_admin_refuse_bad_rows_as_form_errors(in_a, client_a, staff):
    staff("admin")  # not under the frozen clock of `acme`: the second factor is a TOTP code
    MeterFactory()
    plan = PlanFactory(code="basic", currency="EUR", base_fee="10.00")
    url = "/admin/billing/planusagelimit/add/"
    assert client_a.get(url).status_code == 200
    for limit in ("-1", "abc", "1e999"):
        response = client_a.post(url, {"plan": plan.pk, "meter": meter().pk, "limit": limit})
        assert response.status_code == 200 and b"errornote" in response.content
    assert PlanUsageLimit.objects.count() == 0
    response = client_a.post(url, {"plan": plan.pk, "meter": meter().pk, "limit": "1000"})
    assert response.status_code == 302
    response = client_a.post(url, {"plan": plan.pk, "meter": meter().pk, "limit": "5"})  # the same plan and meter
    assert response.status_code == 200 and b"errornote" in response.content
    assert list(PlanUsageLimit.objects.values_list("limit", flat=True)) == [Decimal(1000)]


def test_a_raised_or_removed_plan_limit_lifts_its_block_at_once(acme, client_a, django_capture_on_commit_callbacks):
    """Usage is 140. Raising the plan's limit past it unblocks at once; lowering it blocks only
    at the next evaluation; raising it to a limit still reached blocks again with the new limit
    (and says so); removing it unblocks. The customer's own soft cap is not touched."""
    org = acme["organization"]
    key = APIKeyFactory(name="w", scopes=["read", "write"]).secret
    url = "/api/v1/plans/basic/limits"

    def put(limit: str | None) -> None:
        body = {"limits": [] if limit is None else [{"meter": "calls", "limit": limit}]}
        with django_capture_on_commit_callbacks(execute=True):
            response = client_a.put(url, body, content_type="application/json", **bearer(key))
        assert response.status_code == 200

    def blocked() -> list[str]:
        return [m["limit"] for m in entitlement(client_a, key)["blocked_meters"]]

    UsageCap.objects.create(organization=org, meter=meter(), limit=Decimal(50), hard=False)
    put("140")
    limits_evaluate(organization_id=org.pk)
    assert blocked() == ["140"]
    put("1000")
    assert blocked() == []
    assert list(UsageLimitReached.objects.values_list("source", "hard")) == [("cap", False)]
    put("100")  # lowered: nothing happens until the next evaluation
    assert blocked() == []
    limits_evaluate(organization_id=org.pk)
    assert blocked() == ["100"]
    put("120")  # raised, still reached: blocked again at once under the new limit
    assert blocked() == ["120"]
    put(None)
    assert blocked() == []
    assert [(h["limit"], h["hard"]) for h in hooks("usage.limit_reached")] == [
        ("140", True),
        ("50", False),
        ("100", True),
        ("120", True),
    ]
    assert list(UsageLimitReached.objects.values_list("source", "limit")) == [("cap", Decimal(50))]


def test_the_admin_tells_the_listeners_of_a_raised_moved_or_deleted_plan_limit(
    in_a, client_a, staff, monkeypatch, django_capture_on_commit_callbacks
):
    told: list[tuple[int, list[int]]] = []
    monkeypatch.setattr(
        "billing.hooks._plan_limits_raised", [lambda plan_id, meter_ids: told.append((plan_id, meter_ids))]
    )
    staff("admin")
    calls_meter, other = MeterFactory(), MeterFactory(code="tokens", event_type="token")
    plan = PlanFactory(code="basic", currency="EUR", base_fee="10.00")
    row = PlanUsageLimit.objects.create(plan=plan, meter=calls_meter, limit=Decimal(100))
    change = f"/admin/billing/planusagelimit/{row.pk}/change/"

    def post(path: str, body: dict) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            assert client_a.post(path, body).status_code == 302

    post(change, {"plan": plan.pk, "meter": calls_meter.pk, "limit": "50"})  # lowered: nobody told
    assert told == []
    post(change, {"plan": plan.pk, "meter": calls_meter.pk, "limit": "60"})
    assert told == [(plan.pk, [calls_meter.pk])]
    post(change, {"plan": plan.pk, "meter": other.pk, "limit": "60"})  # calls' limit is gone
    assert told[1:] == [(plan.pk, [calls_meter.pk])]
    post(f"/admin/billing/planusagelimit/{row.pk}/delete/", {"post": "yes"})
    assert told[2:] == [(plan.pk, [other.pk])]
    assert PlanUsageLimit.objects.count() == 0


def test_a_failing_listener_does_not_stop_the_others(acme, queued, monkeypatch):
    from metering import live

    seen = []

    def broken(customers):
        raise RuntimeError("boom")

    monkeypatch.setattr(live, "_listeners", [broken, seen.append])
    usage_changed_notify({"acme"})
    assert seen == [{"acme"}]
