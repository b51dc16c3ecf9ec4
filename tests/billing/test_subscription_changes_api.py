import pytest
import time_machine
from auditlog.models import LogEntry

from billing.models import Subscription, SubscriptionPhase
from invoicing.services.billing_run import billing_run
from tests.factories import APIKeyFactory, MembershipFactory, OrganizationFactory, PlanFactory, SubscriptionFactory
from tests.helpers import api_post, bearer, jwt_login, utc


@pytest.fixture
def setup(in_a):
    org = OrganizationFactory(external_id="acme", currency="USD")
    for code, fee in (("basic", "30.00"), ("pro", "60.00")):
        PlanFactory(code=code, currency="USD", base_fee=fee)
    with time_machine.travel(utc(2027, 4, 1), tick=False):
        sub = SubscriptionFactory(organization=org, plan="basic")
        billing_run(at=utc(2027, 4, 1))  # April's fee invoiced: what a credit can give back
    key = APIKeyFactory(name="crm", scopes=["read", "write"]).secret
    return sub, key


def org_plan(code):
    from billing.models import PlanVersion

    return PlanVersion.objects.select_related("plan").get(plan__code=code)


@pytest.mark.django_db
def test_change_plan_preview_then_change(client_a, setup):
    sub, key = setup
    with time_machine.travel(utc(2027, 4, 11), tick=False):
        entries = LogEntry.objects.count()
        preview = api_post(client_a, f"/api/v1/subscriptions/{sub.pk}/change-plan/preview", {"plan": "pro"}, key)
        assert preview.status_code == 200, preview.content
        assert LogEntry.objects.count() == entries and SubscriptionPhase.objects.count() == 1
        body = preview.json()
        assert (body["kind"], body["preview"], body["effective_at"]) == ("upgrade", True, "2027-04-11T00:00:00+00:00")
        assert [(line["kind"], line["amount"]) for line in body["bill"]["lines"]] == [
            ("base_fee_credit", "-20.00"),
            ("base_fee", "40.00"),
        ]
        assert body["bill"]["subtotal"] == "20.00"
        assert body["bill"]["lines"][0]["proration"] == {"seconds": 20 * 86400, "of": 30 * 86400}
        assert body["subscription"]["plan"] == "basic"
        done = api_post(client_a, f"/api/v1/subscriptions/{sub.pk}/change-plan", {"plan": "pro"}, key).json()
    assert done["bill"] == body["bill"] and done["preview"] is False
    assert done["subscription"]["plan"] == "pro" and done["subscription"]["next_bill_at"] == "2027-04-11T00:00:00+00:00"
    entry = (
        LogEntry.objects.get_for_object(Subscription.objects.get())
        .filter(changes__event__1="subscription.upgrade")
        .get()
    )
    assert entry.additional_data["api_key"] == "crm"


@pytest.mark.django_db
def test_downgrade_is_scheduled_and_shown(client_a, setup):
    sub, key = setup
    Subscription.objects.filter(pk=sub.pk).update(plan_version=org_plan("pro"))
    SubscriptionPhase.objects.filter(subscription=sub).update(plan_version=org_plan("pro"))
    with time_machine.travel(utc(2027, 4, 11), tick=False):
        body = api_post(client_a, f"/api/v1/subscriptions/{sub.pk}/change-plan", {"plan": "basic"}, key).json()
        assert body["kind"] == "downgrade" and body["effective_at"] == "2027-05-01T00:00:00+00:00"
        assert body["subscription"]["plan"] == "pro"
        assert body["subscription"]["scheduled_change"] == {
            "plan": "basic",
            "plan_version": 1,
            "effective_at": "2027-05-01T00:00:00+00:00",
        }


@pytest.mark.django_db
def test_cancel_preview_cancel_and_resume(client_a, setup):
    sub, key = setup
    with time_machine.travel(utc(2027, 4, 21), tick=False):
        preview = api_post(
            client_a, f"/api/v1/subscriptions/{sub.pk}/cancel/preview", {"at_period_end": False}, key
        ).json()
        assert [(x["kind"], x["amount"]) for x in preview["bill"]["lines"]] == [("base_fee_credit", "-10.00")]
        assert Subscription.objects.get().status == "active"
        scheduled = api_post(client_a, f"/api/v1/subscriptions/{sub.pk}/cancel", {}, key).json()
        assert scheduled["subscription"]["cancel_at_period_end"] is True
        assert scheduled["subscription"]["ended_at"] == "2027-05-01T00:00:00+00:00"
        resumed = api_post(client_a, f"/api/v1/subscriptions/{sub.pk}/resume", {}, key)
        assert resumed.status_code == 200 and resumed.json()["ended_at"] is None
        again = api_post(client_a, f"/api/v1/subscriptions/{sub.pk}/resume", {}, key)
        assert again.status_code == 400 and again.json()["error"]["code"] == "not_resumable"
        now = api_post(client_a, f"/api/v1/subscriptions/{sub.pk}/cancel", {"at_period_end": False}, key).json()
    assert now["bill"] == preview["bill"]
    assert now["subscription"]["status"] == "canceled"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("change-plan", {"plan": "basic"}, 400, "same_plan_version"),
        ("change-plan", {"plan": "gold"}, 404, "unknown_plan"),
        ("change-plan", {"plan": "pro", "timing": "later"}, 400, "validation_error"),
        ("change-plan", {}, 400, "validation_error"),
        ("change-plan/preview", {"plan": "pro", "plan_version": 7}, 404, "unknown_plan"),
        ("cancel", {"at_period_end": "maybe"}, 400, "validation_error"),
    ],
)
def test_bad_change_requests_write_nothing(client_a, setup, path, body, status, code):
    sub, key = setup
    entries = LogEntry.objects.count()
    with time_machine.travel(utc(2027, 4, 10), tick=False):
        response = api_post(client_a, f"/api/v1/subscriptions/{sub.pk}/{path}", body, key)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert LogEntry.objects.count() == entries
    assert list(SubscriptionPhase.objects.values_list("plan_version__plan__code", "ends_at")) == [("basic", None)]


@pytest.mark.django_db
def test_customer_members_read_but_cannot_change(client_a, setup):
    sub, _ = setup
    member = MembershipFactory(organization=sub.organization, role="owner").user
    token = jwt_login(client_a, email=member.email)
    assert client_a.get(f"/api/v1/subscriptions/{sub.pk}", **bearer(token)).status_code == 200
    response = api_post(client_a, f"/api/v1/subscriptions/{sub.pk}/cancel", {}, token)
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    outsider = MembershipFactory(role="owner").user
    other = jwt_login(client_a, email=outsider.email)
    assert client_a.get(f"/api/v1/subscriptions/{sub.pk}", **bearer(other)).status_code == 404
    assert Subscription.objects.get().cancel_at_period_end is False
