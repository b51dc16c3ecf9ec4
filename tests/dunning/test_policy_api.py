"""The tenant's dunning policy through the API: GET reads it (the defaults when no row exists), PUT
replaces it whole, audited; a refused PUT writes nothing."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry

from dunning.models import DunningPolicy
from tests.factories import APIKeyFactory, PlanFactory
from tests.helpers import bearer

URL = "/api/v1/dunning/policy"
DEFAULTS = {
    "retry_days": [1, 3, 5, 7, 10, 14],
    "retry_hard_declines": False,
    "retry_on_method_change": True,
    "plan_changes_blocked_day": 10,
    "suspend_day": 14,
    "final_day": 30,
    "final_action": "cancel_at_period_end",
    "email_days": [0, 3, 7, 12, 14],
    "pre_due_reminder_days": None,
}
CHANGED = {
    **DEFAULTS,
    "retry_days": [2, 4, 8],
    "suspend_day": 21,
    "final_day": 45,
    "final_action": "mark_uncollectible",
    "pre_due_reminder_days": 3,
}

pytestmark = pytest.mark.django_db


def put(client, body, key):
    return client.put(URL, body, content_type="application/json", **bearer(key))


def test_get_answers_the_defaults_then_put_replaces_the_policy_audited(in_a, client_a):
    key = APIKeyFactory(name="w", scopes=["read", "write"]).secret
    assert (client_a.get(URL, **bearer(key)).status_code, client_a.get(URL, **bearer(key)).json()) == (200, DEFAULTS)
    assert DunningPolicy.objects.count() == 0
    response = put(client_a, CHANGED, key)
    assert (response.status_code, response.json()) == (200, CHANGED)
    row = DunningPolicy.objects.get()
    assert (row.plan, row.organization, row.retry_days, row.final_day, row.pre_due_reminder_days) == (
        None,
        None,
        [2, 4, 8],
        45,
        3,
    )
    assert client_a.get(URL, **bearer(key)).json() == CHANGED
    [entry] = LogEntry.objects.filter(changes__icontains="dunning.policy_set")
    assert entry.changes_dict["final_day"] == [30, 45]
    assert "retry_hard_declines" not in entry.changes_dict  # unchanged values are not listed
    assert put(client_a, DEFAULTS, key).status_code == 200
    assert DunningPolicy.objects.count() == 1 and DunningPolicy.objects.get().final_day == 30


def test_a_plan_override_is_left_as_it_is(in_a, client_a):
    key = APIKeyFactory(name="w", scopes=["read", "write"]).secret
    plan = PlanFactory(code="basic")
    DunningPolicy.objects.create(plan=plan, final_day=60, suspend_day=20)
    assert put(client_a, CHANGED, key).status_code == 200
    assert DunningPolicy.objects.get(plan=plan).final_day == 60
    assert DunningPolicy.objects.get(plan=None, organization=None).final_day == 45


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"retry_days": [3, 1]}, "retry_days"),
        ({"email_days": [0, 0]}, "email_days"),
        ({"retry_days": [0]}, "retry_days"),
        ({"retry_days": list(range(1, 23))}, "retry_days"),
        ({"suspend_day": 5}, "suspend_day"),  # before plan changes are blocked (day 10)
        ({"final_day": 366}, "final_day"),
        ({"final_action": "delete_everything"}, "final_action"),
        ({"pre_due_reminder_days": 0}, "pre_due_reminder_days"),
        ({"retry_hard_declines": "maybe"}, "retry_hard_declines"),
    ],
)
def test_a_bad_policy_is_refused_naming_its_field_and_nothing_is_written(in_a, client_a, change, field):
    key = APIKeyFactory(name="w", scopes=["read", "write"]).secret
    response = put(client_a, {**DEFAULTS, **change}, key)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in str(error)
    assert DunningPolicy.objects.count() == 0
    assert not LogEntry.objects.filter(changes__icontains="dunning.policy_set").exists()


def test_a_missing_field_is_refused_and_a_read_key_cannot_write(in_a, client_a):
    writer = APIKeyFactory(name="w", scopes=["read", "write"]).secret
    body = {k: v for k, v in CHANGED.items() if k != "final_action"}
    assert put(client_a, body, writer).status_code == 400
    reader = APIKeyFactory(name="r", scopes=["read"]).secret
    assert put(client_a, CHANGED, reader).status_code == 403
    assert DunningPolicy.objects.count() == 0
