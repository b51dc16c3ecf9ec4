"""One cursor pagination for every list (issue 10, section 5): each list answers
`{"next", "previous", "results"}`, in its stated order, page by page with `limit`, and nothing is
cut silently (the subscription and coupon lists used to stop at 1,000; meters were one unpaginated
array). Malformed limits and cursors are 400s with stable codes."""

from __future__ import annotations

import base64
from decimal import Decimal
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from accounts.services.api_key import apikey_create
from billing.models import Coupon, PlanVersion
from billing.services.coupon import coupon_create, coupon_redeem
from billing.services.credit import credit_grant
from billing.services.plan import VersionInput, plan_create, plan_version_create
from billing.services.subscription import subscription_create
from metering.services.meter import meter_create
from tests.factories import OrganizationFactory
from tests.helpers import bearer


@pytest.fixture
def world(in_a, client_a):
    meter_create(actor=None, code="tokens", name="Tokens", event_type="llm", aggregation="count")
    meter_create(actor=None, code="calls", name="Calls", event_type="api_call", aggregation="count")
    pro = plan_create(actor=None, code="pro", name="Pro", currency="USD", interval="month", version=VersionInput("9"))
    plan_create(actor=None, code="basic", name="Basic", currency="USD", interval="month", version=VersionInput("5"))
    plan_version_create(actor=None, plan=pro, version=VersionInput("10"))
    zeta = OrganizationFactory(external_id="zeta", currency="USD")
    acme = OrganizationFactory(external_id="acme", currency="USD")
    for organization in (zeta, acme):
        subscription_create(actor=None, organization=organization, plan_version=PlanVersion.objects.get(version=2))
    for code in ("WINTER", "AUTUMN"):
        coupon = coupon_create(
            actor=None, code=code, name=code, discount_type="percentage", percent_off="10", duration="forever"
        )
        coupon_redeem(actor=None, coupon=coupon, organization=acme)
    for amount in ("5.00", "7.00"):
        credit_grant(actor=None, organization=acme, amount=Decimal(amount), currency="USD")
    key = apikey_create(name="pages", scopes=["read"], actor=None).secret
    return client_a, key


def _walk(client, key, path: str) -> tuple[list, list[dict]]:
    """Every page of `path` with limit=1: the items in order, and each page's body."""
    items, pages, url = [], [], f"{path}{'&' if '?' in path else '?'}limit=1"
    while url:
        response = client.get(url, **bearer(key))
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body)
        items += body["results"]
        url = body["next"] and urlsplit(body["next"])._replace(scheme="", netloc="").geturl()
    return items, pages


LISTS = [
    ("/api/v1/meters", "code", ["calls", "tokens"]),
    ("/api/v1/plans", "code", ["basic", "pro"]),
    ("/api/v1/plans/pro/versions", "version", [1, 2]),
    ("/api/v1/organizations", "external_id", ["zeta", "acme"]),
    ("/api/v1/subscriptions", "customer", ["zeta", "acme"]),
    ("/api/v1/subscriptions?customer=acme", "customer", ["acme"]),
    ("/api/v1/coupons", "code", ["AUTUMN", "WINTER"]),
    ("/api/v1/organizations/acme/coupons", "coupon", ["WINTER", "AUTUMN"]),
    ("/api/v1/organizations/acme/credits", "amount", ["5.00", "7.00"]),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "field", "expected"), LISTS)
def test_every_list_is_paged_by_cursor_in_its_order(world, path, field, expected):
    client, key = world
    items, pages = _walk(client, key, path)
    assert [item[field] for item in items] == expected
    assert len(pages) == len(expected)
    assert all(len(page["results"]) == 1 for page in pages)
    assert pages[0]["previous"] is None and pages[-1]["next"] is None
    assert set(pages[0]) >= {"next", "previous", "results"}


@pytest.mark.django_db
def test_the_credit_page_carries_the_balance_on_every_page(world):
    client, key = world
    _, pages = _walk(client, key, "/api/v1/organizations/acme/credits")
    assert [(page["currency"], page["balance"]) for page in pages] == [("USD", "12.00"), ("USD", "12.00")]


@pytest.mark.django_db
def test_a_list_of_more_than_a_thousand_is_not_cut(world):
    client, key = world
    Coupon.objects.bulk_create(
        Coupon(code=f"C{n:04d}", name="bulk", discount_type="percentage", percent_off=5, duration="once")
        for n in range(1000)
    )
    first = client.get("/api/v1/coupons?limit=1000", **bearer(key)).json()  # 1,002 coupons
    assert [c["code"] for c in first["results"]] == ["AUTUMN", *(f"C{n:04d}" for n in range(999))]
    cursor = parse_qs(urlsplit(first["next"]).query)["cursor"][0]
    second = client.get(f"/api/v1/coupons?limit=1000&cursor={cursor}", **bearer(key)).json()
    assert [coupon["code"] for coupon in second["results"]] == ["C0999", "WINTER"]
    assert second["next"] is None
    default = client.get("/api/v1/coupons", **bearer(key)).json()
    assert len(default["results"]) == 100


def _forged(position: str) -> str:
    return quote(base64.b64encode(f"p={position}".encode()).decode())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("/api/v1/meters?limit=0", "invalid_parameter"),
        ("/api/v1/plans?limit=1001", "invalid_parameter"),
        ("/api/v1/subscriptions?limit=x", "invalid_parameter"),
        ("/api/v1/coupons?cursor=not-a-cursor", "invalid_cursor"),
        (f"/api/v1/subscriptions?cursor={_forged('abc')}", "invalid_cursor"),  # an id column: digits only
        (f"/api/v1/organizations?cursor={_forged('1%2B1')}", "invalid_cursor"),
        (f"/api/v1/meters?cursor={_forged('a%00b')}", "invalid_cursor"),  # a text column: no NUL
    ],
)
def test_malformed_limits_and_cursors_are_refused(world, query, code):
    client, key = world
    response = client.get(query, **bearer(key))
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
