"""Input rules of the billing API (issue 9): amounts are ASCII decimal strings bounded to their
columns, instants RFC 3339 between the years 1900 and 9000, counts bounded, a percentage at most
100, a fixed coupon in whole minor units of its currency. Each refusal is a 400 with a stable code
and writes nothing (no row, no audit entry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from auditlog.models import LogEntry

from billing.api.formats import instant_parse
from billing.models import Coupon, CreditEntry, Plan, Subscription
from billing.services.coupon import coupon_create
from core.errors import DomainError
from tests.factories import APIKeyFactory, MeterFactory, OrganizationFactory, PlanVersionFactory
from tests.helpers import bearer


@pytest.fixture
def api(in_a, client_a):
    OrganizationFactory(external_id="acme", currency="USD", timezone="UTC")
    PlanVersionFactory(plan__code="pro", plan__currency="USD", version=1)
    MeterFactory(code="volume", name="Volume", event_type="payment", aggregation="sum", value_property="amount")
    key = APIKeyFactory(name="w", scopes=["read", "write"]).secret

    def post(path, body):
        return client_a.post(path, body, content_type="application/json", **bearer(key))

    return post


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


def unchanged(*models):
    """Row counts of `models` and of audit entries, to compare after a refused request."""
    return tuple(model.objects.count() for model in (*models, LogEntry))


COUPON = {"code": "C1", "name": "C", "discount_type": "fixed", "duration": "once", "currency": "USD"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("\u0661\u0660\u0660", 'amount must be a decimal string such as "49.00".'),
        ("1e2", 'amount must be a decimal string such as "49.00".'),
        ("99999999999999999999", "amount must have at most 14 digits before the decimal point and 10 after it."),
    ],
)
def test_credit_amounts_are_ascii_decimals_that_fit_the_column(api, amount, message):
    before = unchanged(CreditEntry)
    error = refused(api("/api/v1/organizations/acme/credits", {"amount": amount}), 400, "invalid_amount")
    assert error["message"] == message
    assert unchanged(CreditEntry) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/organizations/acme/credits",
            {"amount": "1", "expires_at": "9999-12-31T23:59:59-14:00"},
            "expires_at",
        ),
        (
            "/api/v1/organizations/acme/credits",
            {"amount": "1", "expires_at": "9999-12-31T23:59:59+14:00"},
            "expires_at",
        ),
        (
            "/api/v1/subscriptions",
            {"customer": "acme", "plan": "pro", "start_at": "9999-12-31T23:59:59-14:00"},
            "start_at",
        ),
        (
            "/api/v1/subscriptions",
            {"customer": "acme", "plan": "pro", "start_at": "0001-01-01T00:00:00+14:00"},
            "start_at",
        ),
        ("/api/v1/coupons", {**COUPON, "amount_off": "1", "redeem_by": "9999-12-31T23:59:59-14:00"}, "redeem_by"),
    ],
)
def test_instants_outside_the_supported_years_are_refused(api, path, body, field):
    before = unchanged(CreditEntry, Subscription, Coupon)
    error = refused(api(path, body), 400, "invalid_datetime")
    assert error["message"] == f"{field} must lie between the years 1900 and 9000."
    assert unchanged(CreditEntry, Subscription, Coupon) == before


@pytest.mark.django_db
def test_counts_are_bounded(api):
    before = unchanged(Coupon, Subscription)
    repeating = {**COUPON, "amount_off": "1", "duration": "repeating"}
    too_long = refused(api("/api/v1/coupons", {**repeating, "duration_periods": 2**31 - 1}), 400, "validation_error")
    assert too_long["fields"] == {
        "duration_periods": [{"code": "max_value", "message": "Ensure this value is less than or equal to 120."}]
    }
    limits = refused(
        api("/api/v1/coupons", {**repeating, "duration_periods": 3, "max_redemptions": 2**31}), 400, "validation_error"
    )
    assert list(limits["fields"]) == ["max_redemptions"]
    version = refused(
        api("/api/v1/subscriptions", {"customer": "acme", "plan": "pro", "plan_version": 2**63}),
        400,
        "validation_error",
    )
    assert list(version["fields"]) == ["plan_version"]
    assert unchanged(Coupon, Subscription) == before
    assert api("/api/v1/coupons", {**repeating, "duration_periods": 120}).status_code == 201


@pytest.mark.django_db
def test_a_repeating_coupon_covers_at_most_120_periods_whatever_calls_the_service(in_a):
    with pytest.raises(DomainError) as err:
        coupon_create(actor=None, **{**COUPON, "amount_off": "1", "duration": "repeating", "duration_periods": 121})
    assert (err.value.code, err.value.message) == (
        "invalid_coupon",
        "duration_periods must be from 1 to 120 (longer: use duration 'forever').",
    )
    assert not Coupon.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("currency", "amount_off", "message"),
    [
        ("JPY", "0.5", "amount_off must have at most 0 decimals in JPY, its minor unit."),
        ("USD", "0.001", "amount_off must have at most 2 decimals in USD, its minor unit."),
        ("XXQ", "5", "currency: 'XXQ' is not an ISO 4217 currency code."),
    ],
)
def test_a_fixed_coupon_is_whole_minor_units_of_its_currency(api, currency, amount_off, message):
    before = unchanged(Coupon)
    body = {**COUPON, "currency": currency, "amount_off": amount_off}
    assert refused(api("/api/v1/coupons", body), 400, "invalid_coupon")["message"] == message
    assert unchanged(Coupon) == before


@pytest.mark.django_db
def test_fixed_coupons_in_minor_units_are_accepted(api):
    cases = [("YEN", "JPY", "500", "500"), ("DINAR", "KWD", "0.125", "0.125"), ("CENTS", "USD", "0.50", "0.5")]
    for code, currency, amount, shown in cases:
        response = api("/api/v1/coupons", {**COUPON, "code": code, "currency": currency, "amount_off": amount})
        assert response.status_code == 201, response.content
        assert response.json()["amount_off"] == shown


@pytest.mark.django_db
def test_a_percentage_coupon_refuses_non_ascii_digits(api):
    before = unchanged(Coupon)
    body = {**COUPON, "discount_type": "percentage", "currency": "", "percent_off": "\u0661\u0660"}
    refused(api("/api/v1/coupons", body), 400, "invalid_amount")
    assert unchanged(Coupon) == before


@pytest.mark.django_db
def test_a_percentage_price_takes_at_most_100_percent(api):
    before = unchanged(Plan)
    charge = {"meter": "volume", "price": {"model": "percentage", "rate": "200"}}
    body = {"code": "pay", "name": "Pay", "currency": "USD", "charges": [charge]}
    error = refused(api("/api/v1/plans", body), 400, "invalid_price.rate_above_100")
    assert error["message"] == "charges[0].price.rate: is a percentage of at most 100 (got '200')."
    assert unchanged(Plan) == before
    charge["price"]["rate"] = "100"
    assert api("/api/v1/plans", body).status_code == 201


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-01T00:00:00Z", datetime(2027, 1, 1, tzinfo=UTC)),
        ("2027-01-01t00:00:00.5z", datetime(2027, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2027-01-01 10:00:00+02:00", datetime(2027, 1, 1, 10, tzinfo=timezone(timedelta(hours=2)))),
        ("9000-12-31T23:59:59Z", datetime(9000, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("1900-01-01T00:00:00Z", datetime(1900, 1, 1, tzinfo=UTC)),
    ],
)
def test_instants_are_rfc_3339_with_an_offset(text, expected):
    parsed = instant_parse(text, field="at")
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2027-01-01T00:00:00", "at must be RFC 3339 with an offset, e.g. 2027-01-01T00:00:00Z."),
        ("2027-01-01", "at must be RFC 3339 with an offset, e.g. 2027-01-01T00:00:00Z."),
        ("2027-02-30T00:00:00Z", "at must be RFC 3339 with an offset, e.g. 2027-01-01T00:00:00Z."),
        ("\u0662\u0660\u0662\u0667-01-01T00:00:00Z", "at must be RFC 3339 with an offset, e.g. 2027-01-01T00:00:00Z."),
        ("2027-01-01T00:00:00Z\n", "at must be RFC 3339 with an offset, e.g. 2027-01-01T00:00:00Z."),
        ("99999-01-01T00:00:00Z", "at must be RFC 3339 with an offset, e.g. 2027-01-01T00:00:00Z."),
        ("9999-12-31T23:59:59-14:00", "at must lie between the years 1900 and 9000."),
        ("9000-12-31T23:59:59-01:00", "at must lie between the years 1900 and 9000."),
        ("1900-01-01T00:00:00+01:00", "at must lie between the years 1900 and 9000."),
        ("0001-01-01T00:00:00Z", "at must lie between the years 1900 and 9000."),
    ],
)
def test_other_instants_are_refused(text, problem):
    with pytest.raises(DomainError) as err:
        instant_parse(text, field="at")
    assert (err.value.code, err.value.message) == ("invalid_datetime", problem)
