import pytest

from billing.models import Plan, PlanCharge, PlanVersion
from core.errors import DomainError
from metering.models import Meter
from metering.services.meter import meter_delete, meter_update
from tests.factories import APIKeyFactory, MeterFactory, OrganizationFactory, subscription_create
from tests.helpers import api_post, bearer

GRADUATED = {
    "model": "graduated",
    "tiers": [{"up_to": "1000", "unit_amount": "0"}, {"up_to": None, "unit_amount": "0.002"}],
}


@pytest.fixture
def writer(in_a):
    MeterFactory()
    MeterFactory(code="bytes", name="Bytes", aggregation="sum", value_property="bytes", group_by=["region"])
    return APIKeyFactory(name="w", scopes=["read", "write"]).secret


PLAN = {
    "code": "pro",
    "name": "Pro",
    "currency": "EUR",
    "interval": "month",
    "base_fee": "49.00",
    "charges": [
        {"meter": "calls", "price": GRADUATED},
        {
            "meter": "bytes",
            "price": {"model": "per_unit", "unit_amount": "0.0001"},
            "group_property": "region",
            "group_prices": {"eu": {"model": "per_unit", "unit_amount": "0.00008"}},
        },
    ],
}


@pytest.mark.django_db
def test_plan_with_charges_is_created_as_version_1(client_a, writer):
    response = api_post(client_a, "/api/v1/plans", PLAN, writer)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["code"] == "pro" and body["current_version"]["version"] == 1
    charges = body["current_version"]["charges"]
    assert [c["meter"] for c in charges] == ["calls", "bytes"]
    assert charges[0]["price"]["tiers"][1] == {"up_to": None, "unit_amount": "0.002", "flat_amount": "0"}
    assert charges[1]["group_prices"]["eu"]["unit_amount"] == "0.00008"
    assert PlanCharge.objects.count() == 2
    round_fee = api_post(
        client_a,
        "/api/v1/plans",
        {**PLAN, "code": "round", "base_fee": "100.00", "minimum_commitment": "250.50"},
        writer,
    ).json()
    assert round_fee["current_version"]["base_fee"] == "100"  # not "1E+2"
    assert round_fee["current_version"]["minimum_commitment"] == "250.5"


@pytest.mark.django_db
def test_price_change_makes_a_new_version_and_subscriptions_keep_theirs(client_a, writer):
    api_post(client_a, "/api/v1/plans", PLAN, writer)
    v1 = PlanVersion.objects.get(plan__code="pro", version=1)
    subscription = subscription_create(organization=OrganizationFactory(currency="EUR"), plan_version=v1)
    response = api_post(
        client_a,
        "/api/v1/plans/pro/versions",
        {"base_fee": "59.00", "charges": [{"meter": "calls", "price": GRADUATED}]},
        writer,
    )
    assert response.status_code == 201, response.content
    assert response.json()["current_version"]["version"] == 2
    subscription.refresh_from_db()
    assert subscription.plan_version == v1
    assert [v["base_fee"] for v in client_a.get("/api/v1/plans/pro/versions", **bearer(writer)).json()["results"]] == [
        "49",
        "59",
    ]
    renamed = client_a.patch(
        "/api/v1/plans/pro", {"name": "Pro 2027"}, content_type="application/json", **bearer(writer)
    )
    assert renamed.json()["name"] == "Pro 2027" and renamed.json()["current_version"]["version"] == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"charges": [{"meter": "calls", "price": {"model": "tiered"}}]}, "invalid_price.unknown_model"),
        (
            {"charges": [{"meter": "calls", "price": {"model": "per_unit", "unit_amount": 0.1}}]},
            "invalid_price.not_a_decimal_string",
        ),
        ({"charges": [{"meter": "nope", "price": GRADUATED}]}, "unknown_meter"),
        (
            {"charges": [{"meter": "calls", "price": GRADUATED}, {"meter": "calls", "price": GRADUATED}]},
            "duplicate_charge",
        ),
        ({"charges": [{"meter": "calls", "price": GRADUATED, "group_property": "region"}]}, "invalid_group"),
        ({"base_fee": "-1"}, "invalid_amount"),
        ({"currency": "EURO"}, "validation_error"),
        ({"currency": "XYZ"}, "invalid_plan"),
    ],
)
def test_invalid_plans_are_refused_and_nothing_is_written(client_a, writer, change, code):
    response = api_post(client_a, "/api/v1/plans", {**PLAN, **change}, writer)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code, response.json()
    assert not Plan.objects.exists() and not PlanVersion.objects.exists() and not PlanCharge.objects.exists()


@pytest.mark.django_db
def test_price_errors_point_at_the_offending_value(client_a, writer):
    bad = {
        **PLAN,
        "charges": [
            {
                "meter": "calls",
                "price": {
                    "model": "graduated",
                    "tiers": [
                        {"up_to": "100", "unit_amount": "1"},
                        {"up_to": "50", "unit_amount": "1"},
                        {"up_to": None, "unit_amount": "1"},
                    ],
                },
            }
        ],
    }
    error = api_post(client_a, "/api/v1/plans", bad, writer).json()["error"]
    assert error["message"].startswith("charges[0].price.tiers[1].up_to")
    assert (error["code"], error["path"]) == ("invalid_price.tiers_not_ascending", "charges[0].price.tiers[1].up_to")


@pytest.mark.django_db
def test_a_meter_a_plan_uses_cannot_change_aggregation_or_be_deleted(client_a, writer):
    api_post(client_a, "/api/v1/plans", PLAN, writer)
    meter = Meter.objects.get(code="calls")
    with pytest.raises(DomainError) as err:
        meter_update(actor=None, meter=meter, aggregation="sum", value_property="n")
    assert err.value.code == "meter_in_use"
    with pytest.raises(DomainError):
        meter_delete(actor=None, meter=meter)
    meter.refresh_from_db()
    assert meter.aggregation == "count"
    assert meter_update(actor=None, meter=meter, name="Calls (renamed)").name == "Calls (renamed)"
    unused = MeterFactory(code="free", name="Free", event_type="x")
    assert meter_update(actor=None, meter=unused, aggregation="max", value_property="v").aggregation == "max"


@pytest.mark.django_db
def test_read_only_credentials_cannot_write_plans(client_a, writer, in_a):
    reader = APIKeyFactory(name="r", scopes=["read"]).secret
    assert api_post(client_a, "/api/v1/plans", PLAN, reader).status_code == 403
    assert client_a.get("/api/v1/plans", **bearer(reader)).status_code == 200
    assert not Plan.objects.exists()
