from datetime import UTC, datetime

import pytest
import time_machine

from billing.models import Subscription
from tests.factories import APIKeyFactory, MembershipFactory, OrganizationFactory, PlanVersionFactory
from tests.helpers import bearer, jwt_login


@pytest.fixture
def setup(in_a):
    OrganizationFactory(external_id="acme", currency="USD", timezone="UTC")
    PlanVersionFactory(plan__code="starter", plan__currency="USD", version=1)
    PlanVersionFactory(plan=PlanVersionFactory(plan__code="pro", plan__currency="USD").plan, version=2)
    return APIKeyFactory(name="w", scopes=["read", "write"]).secret


def post(client, body, key):
    return client.post("/api/v1/subscriptions", body, content_type="application/json", **bearer(key))


@pytest.mark.django_db
@time_machine.travel(datetime(2026, 12, 1, tzinfo=UTC), tick=False)  # the start below is then still ahead
def test_subscribe_list_and_get(client_a, setup):
    response = post(
        client_a,
        {"customer": "acme", "plan": "pro", "start_at": "2027-01-31T12:00:00Z", "billing_mode": "anniversary"},
        setup,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["plan"], body["plan_version"], body["status"]) == ("pro", 2, "pending")  # latest; starts later
    assert (body["current_period_start"], body["current_period_end"]) == (
        "2027-01-31T12:00:00+00:00",
        "2027-02-28T12:00:00+00:00",
    )
    listed = client_a.get("/api/v1/subscriptions?customer=acme", **bearer(setup)).json()["results"]
    assert [s["id"] for s in listed] == [body["id"]]
    assert client_a.get(f"/api/v1/subscriptions/{body['id']}", **bearer(setup)).json()["plan"] == "pro"
    pinned = post(client_a, {"customer": "acme", "plan": "pro", "plan_version": 1}, setup).json()
    assert pinned["plan_version"] == 1 and datetime.fromisoformat(pinned["started_at"]) <= datetime.now(UTC)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"customer": "nobody", "plan": "pro"}, 404, "unknown_customer"),
        ({"customer": "acme", "plan": "gold"}, 404, "unknown_plan"),
        ({"customer": "acme", "plan": "pro", "plan_version": 9}, 404, "unknown_plan"),
        ({"customer": "acme", "plan": "pro", "start_at": "2027-01-01T00:00:00"}, 400, "invalid_datetime"),
        ({"customer": "acme", "plan": "pro", "start_at": "next tuesday"}, 400, "invalid_datetime"),
        ({"customer": "acme", "plan": "pro", "start_at": "1990-01-01T00:00:00Z"}, 400, "start_at_out_of_range"),
        ({"customer": "acme", "plan": "pro", "start_at": "2300-01-01T00:00:00Z"}, 400, "start_at_out_of_range"),
        # Past the instants the API reads at all (years 1900-9000): refused by the parser.
        ({"customer": "acme", "plan": "pro", "start_at": "9999-12-31T23:59:59Z"}, 400, "invalid_datetime"),
        ({"customer": "acme", "plan": "pro", "billing_mode": "weekly"}, 400, "validation_error"),
        ({"plan": "pro"}, 400, "validation_error"),
    ],
)
def test_bad_requests_write_nothing(client_a, setup, body, status, code):
    response = post(client_a, body, setup)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_members_see_only_their_organizations_subscriptions(client_a, setup):
    post(client_a, {"customer": "acme", "plan": "pro"}, setup)
    mine = MembershipFactory(organization__external_id="mine", organization__currency="USD")
    own = post(client_a, {"customer": "mine", "plan": "pro"}, setup).json()
    token = jwt_login(client_a, email=mine.user.email)
    listed = client_a.get("/api/v1/subscriptions", **bearer(token)).json()["results"]
    assert [s["customer"] for s in listed] == ["mine"]
    other = Subscription.objects.get(organization__external_id="acme")
    assert client_a.get(f"/api/v1/subscriptions/{other.pk}", **bearer(token)).status_code == 404
    assert client_a.get(f"/api/v1/subscriptions/{own['id']}", **bearer(token)).status_code == 200
    assert post(client_a, {"customer": "mine", "plan": "pro"}, token).status_code == 403
