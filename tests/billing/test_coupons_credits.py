"""Coupons (creation, redemption limits, what periods they cover, discounts on real bills) and
the credit ledger (grants, soonest-expiring first, expiry, voids, the API)."""

from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry

from billing.models import Coupon, CouponRedemption, CreditEntry
from billing.selectors.bill import bill_get
from billing.selectors.credit import credit_balance_get
from billing.selectors.subscription_state import subscription_state_get
from billing.services.coupon import coupon_create, coupon_redeem, coupon_redemption_remove
from billing.services.credit import credit_apply, credit_grant, credit_void
from core.errors import DomainError
from core.money import Money
from tests.billing.bill_points import bill_point_close
from tests.factories import APIKeyFactory, OrganizationFactory, PlanFactory, SubscriptionFactory
from tests.helpers import bearer, utc

D = Decimal


@pytest.fixture
def subscribed(in_a):
    org = OrganizationFactory(external_id="acme", currency="USD", timezone="Europe/Berlin")
    PlanFactory(code="basic", currency="USD", base_fee="30.00")
    sub = SubscriptionFactory(organization=org, at=utc(2027, 3, 31, 22))  # Apr 1 00:00 in Berlin
    return org, sub


def percent(code="SPRING", **extra):
    values = {"code": code, "name": "Spring", "discount_type": "percentage", "percent_off": "20", "duration": "once"}
    values.update(extra)
    return coupon_create(actor=None, **values)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"percent_off": "0"}, "percent_off must be more than 0 and at most 100."),
        ({"percent_off": "100.5"}, "percent_off must be more than 0 and at most 100."),
        ({"percent_off": "ten"}, 'percent_off must be a decimal string such as "49.00".'),
        ({"percent_off": "1e1"}, 'percent_off must be a decimal string such as "49.00".'),
        (
            {"discount_type": "fixed", "percent_off": None, "amount_off": "5"},
            "A fixed coupon needs amount_off and currency, and no percent_off.",
        ),
        ({"duration": "repeating"}, "duration_periods is required for, and only for, repeating coupons."),
        ({"duration_periods": 3}, "duration_periods is required for, and only for, repeating coupons."),
        ({"meter_codes": ["calls"]}, "meter_codes only go with applies_to 'charges'."),
        ({"applies_to": "charges", "meter_codes": ["nope"]}, "No meter with code 'nope'."),
    ],
)
def test_invalid_coupons_are_refused(in_a, fields, message):
    with pytest.raises(DomainError) as err:
        percent(**fields)
    assert err.value.message == message
    assert not Coupon.objects.exists()


@pytest.mark.django_db
def test_redemption_covers_whole_periods_in_the_organization_timezone(subscribed):
    org, _ = subscribed
    repeating = percent("R3", duration="repeating", duration_periods=3)
    forever = percent("EVER", duration="forever")
    once = percent("ONCE")
    with time_machine.travel(utc(2027, 4, 20, 12), tick=False):
        r3 = coupon_redeem(actor=None, coupon=repeating, organization=org)
        r_ever = coupon_redeem(actor=None, coupon=forever, organization=org)
        r_once = coupon_redeem(actor=None, coupon=once, organization=org)
    # Berlin's April starts at Mar 31 22:00 UTC; three periods end at Jun 30 22:00 UTC
    assert (r3.covers_from, r3.covers_until) == (utc(2027, 3, 31, 22), utc(2027, 6, 30, 22))
    assert (r_ever.covers_from, r_ever.covers_until) == (utc(2027, 3, 31, 22), None)
    assert (r_once.covers_from, r_once.covers_until) == (utc(2027, 3, 31, 22), utc(2027, 4, 30, 22))
    assert r3.redeemed_at == utc(2027, 4, 20, 12)


@pytest.mark.django_db
def test_redemption_limits_write_nothing(subscribed):
    org, _ = subscribed
    other = OrganizationFactory(external_id="other", currency="EUR")
    limited = percent("LIM", max_redemptions=1, redeem_by=utc(2027, 5, 1))
    with time_machine.travel(utc(2027, 4, 2), tick=False):
        coupon_redeem(actor=None, coupon=limited, organization=org)
        cases = [
            (limited, org, "coupon_used_up"),
            (percent("X1"), OrganizationFactory(external_id="nosub", currency="USD"), "no_subscription"),
            (
                coupon_create(
                    actor=None,
                    code="FIX",
                    name="Fix",
                    discount_type="fixed",
                    amount_off="5",
                    currency="EUR",
                    duration="once",
                ),
                org,
                "currency_mismatch",
            ),
        ]
        for coupon, organization, code in cases:
            before = CouponRedemption.objects.count()
            with pytest.raises(DomainError) as err:
                coupon_redeem(actor=None, coupon=coupon, organization=organization)
            assert err.value.code == code
            assert CouponRedemption.objects.count() == before
    unlimited = percent("AGAIN")
    with time_machine.travel(utc(2027, 4, 2), tick=False):
        coupon_redeem(actor=None, coupon=unlimited, organization=org)
        with pytest.raises(DomainError) as err:
            coupon_redeem(actor=None, coupon=unlimited, organization=org)
        assert err.value.code == "already_redeemed"
    with time_machine.travel(utc(2027, 5, 1), tick=False), pytest.raises(DomainError) as err:
        coupon_redeem(actor=None, coupon=percent("LATE", redeem_by=utc(2027, 5, 1)), organization=org)
    assert err.value.code == "coupon_expired"
    assert other.redemptions.count() == 0


@pytest.mark.django_db
def test_coupon_discounts_the_next_bill_then_stops(subscribed):
    org, sub = subscribed
    with time_machine.travel(utc(2027, 4, 20), tick=False):
        bill_point_close(subscription=sub, point=utc(2027, 3, 31, 22))
        coupon_redeem(actor=None, coupon=percent("R2", duration="repeating", duration_periods=2), organization=org)
    state = subscription_state_get(sub)
    may = bill_get(state, utc(2027, 4, 30, 22))
    # May's fee (May is the second covered period): 20 % of 30.00
    assert [(x.kind, x.amount.amount) for x in may.lines] == [("base_fee", D("30.00")), ("discount", D("-6.00"))]
    bill_point_close(subscription=sub, point=utc(2027, 4, 30, 22))
    june = bill_get(subscription_state_get(sub), utc(2027, 5, 31, 22))
    assert [(x.kind, x.amount.amount) for x in june.lines] == [("base_fee", D("30.00"))]
    # removed before the bill: no discount
    with time_machine.travel(utc(2027, 4, 25), tick=False):
        coupon_redemption_remove(actor=None, redemption=CouponRedemption.objects.get())
    assert [x.kind for x in bill_get(state, utc(2027, 4, 30, 22)).lines] == ["base_fee"]


@pytest.mark.django_db
def test_credit_is_used_soonest_expiring_first_and_expired_credit_not_at_all(subscribed):
    org, _ = subscribed
    with time_machine.travel(utc(2027, 4, 1), tick=False):
        never = credit_grant(actor=None, organization=org, amount=D("50.00"), currency="USD", kind="purchase")
        late = credit_grant(actor=None, organization=org, amount=D("20.00"), currency="USD", expires_at=utc(2027, 9, 1))
        soon = credit_grant(actor=None, organization=org, amount=D("10.00"), currency="USD", expires_at=utc(2027, 6, 1))
        gone = credit_grant(actor=None, organization=org, amount=D("99.00"), currency="USD", expires_at=utc(2027, 5, 1))
    assert credit_balance_get(organization=org, at=utc(2027, 4, 2)) == Money(D("179.00"), "USD")
    assert credit_balance_get(organization=org, at=utc(2027, 5, 1)) == Money(D("80.00"), "USD")  # 99.00 expired
    applied = credit_apply(organization=org, amount=D("25.00"), currency="USD", at=utc(2027, 5, 2), reference="INV-1")
    assert applied.applied == D("25.00")
    assert [(e.grant_id, e.amount, e.kind) for e in applied.entries] == [
        (soon.pk, D("-10.00"), "application"),
        (late.pk, D("-15.00"), "application"),
    ]
    assert credit_balance_get(organization=org, at=utc(2027, 5, 2)) == Money(D("55.00"), "USD")
    more = credit_apply(organization=org, amount=D("500.00"), currency="USD", at=utc(2027, 5, 3), reference="INV-2")
    assert more.applied == D("55.00") and [e.grant_id for e in more.entries] == [late.pk, never.pk]
    assert credit_balance_get(organization=org, at=utc(2027, 5, 3)) == Money(D("0"), "USD")
    assert gone.uses.count() == 0


@pytest.mark.django_db
def test_credit_refusals_and_void(subscribed):
    org, _ = subscribed
    with time_machine.travel(utc(2027, 4, 1), tick=False):
        cases = [
            ({"amount": D("10.00"), "currency": "EUR"}, "currency_mismatch"),
            ({"amount": D("-1.00"), "currency": "USD"}, "invalid_amount"),
            ({"amount": D("1.005"), "currency": "USD"}, "invalid_amount"),
            ({"amount": D("1.00"), "currency": "USD", "expires_at": utc(2027, 3, 1)}, "invalid_expiry"),
            ({"amount": D("1.00"), "currency": "USD", "kind": "application"}, "invalid_credit_kind"),
        ]
        for fields, code in cases:
            with pytest.raises(DomainError) as err:
                credit_grant(actor=None, organization=org, **fields)
            assert err.value.code == code
        assert not CreditEntry.objects.exists()
        grant = credit_grant(actor=None, organization=org, amount=D("40.00"), currency="USD")
        credit_apply(organization=org, amount=D("15.00"), currency="USD", at=utc(2027, 4, 1), reference="INV-1")
        void = credit_void(actor=None, grant=grant)
        assert (void.kind, void.amount, void.grant_id) == ("void", D("-25.00"), grant.pk)
        with pytest.raises(DomainError) as err:
            credit_void(actor=None, grant=grant)
        assert err.value.code == "nothing_to_void"
    assert credit_balance_get(organization=org, at=utc(2027, 4, 2)) == Money(D("0"), "USD")
    assert CreditEntry.objects.count() == 3


@pytest.mark.django_db
def test_coupon_and_credit_api(client_a, subscribed):
    org, _ = subscribed
    key = APIKeyFactory(name="crm", scopes=["read", "write"]).secret
    made = client_a.post(
        "/api/v1/coupons",
        {
            "code": "TEN",
            "name": "Ten off",
            "discount_type": "fixed",
            "amount_off": "10.00",
            "currency": "USD",
            "duration": "forever",
        },
        content_type="application/json",
        **bearer(key),
    )
    assert made.status_code == 201, made.content
    assert (made.json()["amount_off"], made.json()["times_redeemed"]) == ("10", 0)
    bad = client_a.post(
        "/api/v1/coupons",
        {"code": "TEN", "name": "x", "discount_type": "percentage", "percent_off": "5", "duration": "once"},
        content_type="application/json",
        **bearer(key),
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "coupon_exists"
    redeemed = client_a.post(
        "/api/v1/organizations/acme/coupons", {"coupon": "TEN"}, content_type="application/json", **bearer(key)
    )
    assert redeemed.status_code == 201 and redeemed.json()["covers_until"] is None
    missing = client_a.post(
        "/api/v1/organizations/acme/coupons", {"coupon": "NOPE"}, content_type="application/json", **bearer(key)
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_coupon"

    grant = client_a.post(
        "/api/v1/organizations/acme/credits",
        {"amount": "25.00", "kind": "purchase", "description": "Prepaid"},
        content_type="application/json",
        **bearer(key),
    )
    assert grant.status_code == 201, grant.content
    ledger = client_a.get("/api/v1/organizations/acme/credits", **bearer(key)).json()
    assert (ledger["balance"], ledger["currency"], ledger["next"], ledger["previous"]) == ("25.00", "USD", None, None)
    assert [(e["kind"], e["amount"], e["remaining"]) for e in ledger["results"]] == [("purchase", "25.00", "25.00")]
    entries = LogEntry.objects.count()
    refused = client_a.post(
        "/api/v1/organizations/acme/credits", {"amount": "2.5e3"}, content_type="application/json", **bearer(key)
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_amount"
    assert LogEntry.objects.count() == entries and CreditEntry.objects.count() == 1
    void = client_a.post(
        f"/api/v1/organizations/acme/credits/{grant.json()['id']}/void",
        {},
        content_type="application/json",
        **bearer(key),
    )
    assert void.status_code == 201 and void.json()["amount"] == "-25.00"
    assert client_a.get("/api/v1/organizations/acme/credits", **bearer(key)).json()["balance"] == "0.00"
    assert org.credit_entries.count() == 2
