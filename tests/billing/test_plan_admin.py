"""The plan editor in the Django admin: plans and versions made through real admin POSTs (and so
through plan_create / plan_version_create), service errors on the form with nothing written, the
worked-example endpoint's exact figures, and who may reach any of it."""

import json
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry as AdminLogEntry
from django.test import Client
from django.utils.html import escape

from billing.models import Plan, PlanCharge, PlanVersion
from tests.factories import PASSWORD, MeterFactory, UserFactory, totp_enable
from tests.helpers import staff_login

ADD_URL = "/admin/billing/plan/add/"
PREVIEW_URL = "/admin/billing/plan/price-preview/"

GRADUATED = {
    "model": "graduated",
    "tiers": [
        {"up_to": "1000", "unit_amount": "0", "flat_amount": "0"},
        {"up_to": None, "unit_amount": "0.002", "flat_amount": "0"},
    ],
}
GRADUATED_STORED = {**GRADUATED, "minimum_amount": None}
NOT_ASCENDING = {
    "model": "graduated",
    "tiers": [
        {"up_to": "1000", "unit_amount": "0"},
        {"up_to": "500", "unit_amount": "0.002"},
        {"up_to": None, "unit_amount": "0.001"},
    ],
}
NOT_ASCENDING_MESSAGE = (
    "charges[0].price.tiers[1].up_to: up_to must be greater than 1000 (bounds strictly ascend from 0)."
)
TIMES = "\N{MULTIPLICATION SIGN}"


def line(quantity: str, unit_amount: str, flat_amount: str, amount: str) -> str:
    """A breakdown row as the worked example writes it, such as line("1,000", "0.00", "0.00", "0.00")."""
    return f"{quantity} {TIMES} {unit_amount} + {flat_amount} flat = {amount}"


@pytest.fixture
def meters(in_a):
    MeterFactory()
    MeterFactory(code="bytes", name="Bytes", aggregation="sum", value_property="bytes", group_by=["region"])


def signed_in(client: Client, role: str):
    user = UserFactory(staff_role=role)
    staff_login(client, email=user.email, totp_secret=totp_enable(user))
    return user


@pytest.fixture
def admin_client(client_a, meters):
    signed_in(client_a, "admin")
    return client_a


def charges_data(charges, *, initial=0, extra=1):
    """The charges formset as the editor's form posts it (prefix "charges")."""
    data = {
        "charges-TOTAL_FORMS": str(len(charges) + extra),
        "charges-INITIAL_FORMS": str(initial),
        "charges-MIN_NUM_FORMS": "0",
        "charges-MAX_NUM_FORMS": "1000",
    }
    blank = {"meter": "", "name": "", "price": None, "group_property": "", "group_prices": None}
    for index, charge in enumerate([*charges, *[blank] * extra]):
        prefix = f"charges-{index}-"
        data[prefix + "meter"] = charge["meter"]
        data[prefix + "name"] = charge.get("name", "")
        data[prefix + "price"] = "" if charge["price"] is None else json.dumps(charge["price"])
        data[prefix + "group_property"] = charge.get("group_property", "")
        data[prefix + "group_prices"] = json.dumps(charge["group_prices"]) if charge.get("group_prices") else ""
        if charge.get("delete"):
            data[prefix + "DELETE"] = "on"
    return data


def plan_data(charges, **overrides):
    return {
        "code": "pro",
        "name": "Pro",
        "currency": "EUR",
        "interval": "quarter",
        "description": "For teams",
        "base_fee": "49.00",
        "base_fee_timing": "arrears",
        "trial_days": "14",
        "minimum_commitment": "100.50",
        **charges_data(charges),
        **overrides,
    }


def version_data(charges, *, initial, extra=1, **overrides):
    return {
        "base_fee": "59.00",
        "base_fee_timing": "advance",
        "trial_days": "0",
        "minimum_commitment": "",
        **charges_data(charges, initial=initial, extra=extra),
        **overrides,
    }


def version_rows(plan):
    return list(
        plan.versions.order_by("version").values_list(
            "id", "version", "base_fee", "base_fee_timing", "trial_days", "minimum_commitment", "created_at"
        )
    )


def charge_rows(version):
    return list(
        version.charges.order_by("position").values_list(
            "id", "meter__code", "name", "price", "group_property", "group_prices", "position"
        )
    )


def counts():
    return (
        Plan.objects.count(),
        PlanVersion.objects.count(),
        PlanCharge.objects.count(),
        AdminLogEntry.objects.count(),
    )


# --- making plans and versions -------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_admin_creates_a_plan_then_a_new_version_and_version_1_is_unchanged(admin_client):
    assert admin_client.get(ADD_URL).status_code == 200
    response = admin_client.post(ADD_URL, plan_data([{"meter": "calls", "name": "API calls", "price": GRADUATED}]))
    assert response.status_code == 302, response.content[:3000]
    plan = Plan.objects.get()
    assert response["Location"] == f"/admin/billing/plan/{plan.pk}/change/"
    assert (plan.code, plan.name, plan.currency, plan.interval, plan.description, plan.is_active) == (
        "pro",
        "Pro",
        "EUR",
        "quarter",
        "For teams",
        True,
    )
    v1 = plan.versions.get()
    assert (v1.version, v1.base_fee, v1.base_fee_timing, v1.trial_days, v1.minimum_commitment) == (
        1,
        Decimal("49.00"),
        "arrears",
        14,
        Decimal("100.50"),
    )
    assert [row[1:] for row in charge_rows(v1)] == [("calls", "API calls", GRADUATED_STORED, "", {}, 0)]
    v1_before, v1_charges_before = version_rows(plan), charge_rows(v1)

    # The new-version form starts from the latest version, price JSON included (no-JS path).
    new_version_url = f"/admin/billing/plan/{plan.pk}/new-version/"
    page = admin_client.get(new_version_url)
    assert page.status_code == 200
    assert page.context["version_form"].initial == {
        "base_fee": "49",
        "base_fee_timing": "arrears",
        "trial_days": 14,
        "minimum_commitment": "100.5",
    }
    assert page.context["formset"].initial == [
        {"meter": "calls", "name": "API calls", "price": GRADUATED_STORED, "group_property": "", "group_prices": None}
    ]
    assert escape(json.dumps(GRADUATED_STORED, indent=2)) in page.content.decode()
    assert 'data-preview-url="/admin/billing/plan/price-preview/"' in page.content.decode()

    cheaper = {
        "model": "graduated",
        "tiers": [{"up_to": "5000", "unit_amount": "0"}, {"up_to": None, "unit_amount": "0.0015"}],
    }
    by_region = {"model": "per_unit", "unit_amount": "0.0001"}
    eu = {"model": "per_unit", "unit_amount": "0.00008"}
    response = admin_client.post(
        new_version_url,
        version_data(
            [
                {"meter": "calls", "name": "Calls", "price": cheaper},
                {"meter": "bytes", "price": by_region, "group_property": "region", "group_prices": {"eu": eu}},
            ],
            initial=1,
        ),
    )
    assert response.status_code == 302, response.content[:3000]
    assert response["Location"] == f"/admin/billing/plan/{plan.pk}/change/"

    assert [row[1] for row in version_rows(plan)] == [1, 2]
    assert version_rows(plan)[0] == v1_before[0]  # version 1 untouched, its charges too
    assert charge_rows(v1) == v1_charges_before
    v2 = plan.versions.get(version=2)
    assert (v2.base_fee, v2.base_fee_timing, v2.trial_days, v2.minimum_commitment) == (
        Decimal("59.00"),
        "advance",
        0,
        None,
    )
    assert [row[1:] for row in charge_rows(v2)] == [
        (
            "calls",
            "Calls",
            {
                "model": "graduated",
                "tiers": [
                    {"up_to": "5000", "unit_amount": "0", "flat_amount": "0"},
                    {"up_to": None, "unit_amount": "0.0015", "flat_amount": "0"},
                ],
                "minimum_amount": None,
            },
            "",
            {},
            0,
        ),
        (
            "bytes",
            "",
            {**by_region, "minimum_amount": None},
            "region",
            {"eu": {**eu, "minimum_amount": None}},
            1,
        ),
    ]
    assert list(AdminLogEntry.objects.order_by("id").values_list("object_id", "change_message")) == [
        (str(plan.pk), '[{"added": {}}]'),
        (str(plan.pk), "Added version 2."),
    ]


@pytest.mark.django_db
def test_a_charge_marked_for_deletion_is_left_out_of_the_new_version(admin_client):
    admin_client.post(
        ADD_URL,
        plan_data(
            [
                {"meter": "calls", "price": GRADUATED},
                {"meter": "bytes", "price": {"model": "per_unit", "unit_amount": "0.0001"}},
            ]
        ),
    )
    plan = Plan.objects.get()
    response = admin_client.post(
        f"/admin/billing/plan/{plan.pk}/new-version/",
        version_data(
            [
                {"meter": "calls", "price": GRADUATED, "delete": True},
                {"meter": "bytes", "price": {"model": "per_unit", "unit_amount": "0.0002"}},
            ],
            initial=2,
            extra=0,
        ),
    )
    assert response.status_code == 302, response.content[:3000]
    v2 = plan.versions.get(version=2)
    assert [row[1:] for row in charge_rows(v2)] == [
        ("bytes", "", {"model": "per_unit", "unit_amount": "0.0002", "minimum_amount": None}, "", {}, 0)
    ]
    assert [row[1] for row in charge_rows(plan.versions.get(version=1))] == ["calls", "bytes"]


@pytest.mark.django_db
def test_tiers_not_ascending_are_refused_with_the_path_and_nothing_is_written(admin_client):
    before = counts()
    response = admin_client.post(ADD_URL, plan_data([{"meter": "calls", "price": NOT_ASCENDING}]))
    assert response.status_code == 200
    assert counts() == before == (0, 0, 0, 0)
    assert response.context["error"] == NOT_ASCENDING_MESSAGE
    assert response.context["formset"].forms[0].errors == {"price": [NOT_ASCENDING_MESSAGE]}
    content = response.content.decode()
    assert f'<p class="errornote" id="service-error">Nothing was saved: {escape(NOT_ASCENDING_MESSAGE)}</p>' in content
    # What the seller typed comes back for correcting.
    assert escape(json.dumps(NOT_ASCENDING, indent=2)) in content


@pytest.mark.django_db
def test_a_refused_new_version_writes_nothing_and_leaves_version_1_alone(admin_client):
    admin_client.post(ADD_URL, plan_data([{"meter": "calls", "price": GRADUATED}]))
    plan = Plan.objects.get()
    v1_rows, v1_charges = version_rows(plan), charge_rows(plan.versions.get())
    before = counts()
    url = f"/admin/billing/plan/{plan.pk}/new-version/"

    response = admin_client.post(url, version_data([{"meter": "calls", "price": NOT_ASCENDING}], initial=1))
    assert response.status_code == 200
    assert response.context["error"] == NOT_ASCENDING_MESSAGE
    assert response.context["formset"].forms[0].errors == {"price": [NOT_ASCENDING_MESSAGE]}

    response = admin_client.post(url, version_data([{"meter": "calls", "price": GRADUATED}], initial=1, base_fee="-1"))
    assert response.status_code == 200
    assert response.context["error"] == "base_fee must be a non-negative decimal."
    assert response.context["version_form"].errors == {"base_fee": ["base_fee must be a non-negative decimal."]}

    response = admin_client.post(
        url,
        version_data(
            [{"meter": "calls", "price": GRADUATED, "group_property": "region"}],
            initial=1,
        ),
    )
    assert response.status_code == 200
    assert response.context["error"] == "charges[0].group_property must be one of the meter's group_by []."

    bad_json = {**version_data([], initial=0), "charges-0-meter": "calls", "charges-0-price": "{"}
    response = admin_client.post(url, bad_json)
    assert response.status_code == 200
    assert response.context["error"] is None
    assert response.context["formset"].forms[0].errors == {"price": ["Enter a valid JSON."]}

    assert counts() == before
    assert version_rows(plan) == v1_rows
    assert charge_rows(plan.versions.get()) == v1_charges


@pytest.mark.django_db
def test_plan_code_taken_is_shown_on_the_code_field(admin_client):
    admin_client.post(ADD_URL, plan_data([]))
    before = counts()
    response = admin_client.post(ADD_URL, plan_data([], name="Other"))
    assert response.status_code == 200
    assert response.context["error"] == "code: Plan with this Code already exists."
    assert response.context["plan_form"].errors == {"code": ["code: Plan with this Code already exists."]}
    assert counts() == before


@pytest.mark.django_db
def test_name_changes_in_place_but_versions_are_read_only(admin_client):
    admin_client.post(ADD_URL, plan_data([{"meter": "calls", "price": GRADUATED}]))
    plan = Plan.objects.get()
    v1 = plan.versions.get()
    v1_rows, v1_charges = version_rows(plan), charge_rows(v1)

    change = admin_client.get(f"/admin/billing/plan/{plan.pk}/change/")
    assert f'href="/admin/billing/plan/{plan.pk}/new-version/"' in change.content.decode()
    response = admin_client.post(
        f"/admin/billing/plan/{plan.pk}/change/",
        {
            "name": "Pro (2026)",
            "description": "For teams",
            "is_active": "",
            "versions-TOTAL_FORMS": "1",
            "versions-INITIAL_FORMS": "1",
            "versions-MIN_NUM_FORMS": "0",
            "versions-MAX_NUM_FORMS": "0",
            "versions-0-id": str(v1.pk),
            "versions-0-plan": str(plan.pk),
        },
    )
    assert response.status_code == 302, response.content[:3000]
    plan.refresh_from_db()
    assert (plan.code, plan.name, plan.is_active, plan.currency) == ("pro", "Pro (2026)", False, "EUR")
    assert version_rows(plan) == v1_rows and charge_rows(v1) == v1_charges

    version_page = admin_client.get(f"/admin/billing/planversion/{v1.pk}/change/")
    assert version_page.status_code == 200
    assert 'name="_save"' not in version_page.content.decode()
    assert admin_client.post(f"/admin/billing/planversion/{v1.pk}/change/", {"base_fee": "0"}).status_code == 403
    assert admin_client.get("/admin/billing/planversion/add/").status_code == 403
    assert version_rows(plan) == v1_rows and charge_rows(v1) == v1_charges


# --- the worked example --------------------------------------------------------------------------


def preview(client, body, **extra):
    return client.post(PREVIEW_URL, json.dumps(body), content_type="application/json", **extra)


@pytest.mark.django_db
def test_example_of_a_graduated_price_is_the_engines_exact_figures(admin_client):
    price = {
        "model": "graduated",
        "tiers": [{"up_to": "1000", "unit_amount": "0"}, {"up_to": None, "unit_amount": "0.00125", "flat_amount": "5"}],
    }
    response = preview(admin_client, {"price": price, "quantity": "1500", "currency": "USD"})
    assert response.status_code == 200, response.content
    tier_1 = {"label": "tier", "tier": 0, "description": "Tier 1 (up to 1,000)"}
    tier_2 = {"label": "tier", "tier": 1, "description": "Tier 2 (above 1,000)"}
    assert response.json() == {
        "currency": "USD",
        "price": {
            "model": "graduated",
            "tiers": [
                {"up_to": "1000", "unit_amount": "0", "flat_amount": "0"},
                {"up_to": None, "unit_amount": "0.00125", "flat_amount": "5"},
            ],
            "minimum_amount": None,
        },
        "quantity": "1500",
        "amount": "5.625",
        "rounded_amount": "5.63",
        "minimum_true_up": "0",
        "rounded_minimum_true_up": "0.00",
        "breakdown": [
            {
                **tier_1,
                "quantity": "1000",
                "unit_amount": "0",
                "flat_amount": "0",
                "amount": "0",
                "text": line("1,000", "0.00", "0.00", "0.00"),
            },
            {
                **tier_2,
                "quantity": "500",
                "unit_amount": "0.00125",
                "flat_amount": "5",
                "amount": "5.625",
                "text": line("500", "0.00125", "5.00", "5.625"),
            },
        ],
        "volume_cliffs": [],
        "samples": [
            {
                "quantity": "0",
                "amount": "0",
                "rounded_amount": "0.00",
                "minimum_true_up": "0",
                "rounded_minimum_true_up": "0.00",
                "breakdown": [
                    {
                        **tier_1,
                        "quantity": "0",
                        "unit_amount": "0",
                        "flat_amount": "0",
                        "amount": "0",
                        "text": line("0", "0.00", "0.00", "0.00"),
                    }
                ],
            },
            {
                "quantity": "1000",
                "amount": "0",
                "rounded_amount": "0.00",
                "minimum_true_up": "0",
                "rounded_minimum_true_up": "0.00",
                "breakdown": [
                    {
                        **tier_1,
                        "quantity": "1000",
                        "unit_amount": "0",
                        "flat_amount": "0",
                        "amount": "0",
                        "text": line("1,000", "0.00", "0.00", "0.00"),
                    }
                ],
            },
            {
                "quantity": "1001",
                "amount": "5.00125",
                "rounded_amount": "5.00",
                "minimum_true_up": "0",
                "rounded_minimum_true_up": "0.00",
                "breakdown": [
                    {
                        **tier_1,
                        "quantity": "1000",
                        "unit_amount": "0",
                        "flat_amount": "0",
                        "amount": "0",
                        "text": line("1,000", "0.00", "0.00", "0.00"),
                    },
                    {
                        **tier_2,
                        "quantity": "1",
                        "unit_amount": "0.00125",
                        "flat_amount": "5",
                        "amount": "5.00125",
                        "text": line("1", "0.00125", "5.00", "5.00125"),
                    },
                ],
            },
        ],
    }


@pytest.mark.django_db
def test_example_of_a_package_price_with_a_minimum_in_the_plans_currency(admin_client):
    price = {"model": "package", "package_size": "1000", "package_amount": "5.00", "free_units": "100",
             "minimum_amount": "20"}  # fmt: skip
    response = preview(admin_client, {"price": price, "quantity": "2150", "currency": "EUR"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["price"] == {**price, "minimum_amount": "20"}
    assert {key: body[key] for key in ("quantity", "amount", "rounded_amount")} == {
        "quantity": "2150",
        "amount": "15",
        "rounded_amount": "15.00",
    }
    assert (body["minimum_true_up"], body["rounded_minimum_true_up"]) == ("5", "5.00")
    assert body["breakdown"] == [
        {
            "label": "free_units",
            "tier": None,
            "description": "Free units",
            "quantity": "100",
            "unit_amount": "0",
            "flat_amount": "0",
            "amount": "0",
            "text": line("100", "0.00", "0.00", "0.00"),
        },
        {
            "label": "packages",
            "tier": None,
            "description": "Packages of 1,000 (each started one)",
            "quantity": "3",
            "unit_amount": "5",
            "flat_amount": "0",
            "amount": "15",
            "text": line("3", "5.00", "0.00", "15.00"),
        },
    ]
    assert [(s["quantity"], s["amount"], s["minimum_true_up"]) for s in body["samples"]] == [
        ("0", "0", "20"),
        ("100", "0", "20"),
        ("101", "5", "15"),
        ("1100", "5", "15"),
        ("1101", "10", "10"),
    ]
    assert body["volume_cliffs"] == []


@pytest.mark.django_db
def test_example_rounds_to_the_currencys_minor_unit(admin_client):
    price = {"model": "per_unit", "unit_amount": "0.5"}
    body = preview(admin_client, {"price": price, "quantity": "3", "currency": "JPY"}).json()
    assert (body["amount"], body["rounded_amount"]) == ("1.5", "2")
    assert body["breakdown"][0]["text"] == line("3", "0.5", "0", "1.5")
    assert [s["quantity"] for s in body["samples"]] == ["0", "1", "1000"]
    body = preview(admin_client, {"price": price, "quantity": "3", "currency": "KWD"}).json()
    assert (body["amount"], body["rounded_amount"]) == ("1.5", "1.500")


@pytest.mark.django_db
def test_example_of_a_volume_price_reports_its_cliff(admin_client):
    price = {
        "model": "volume",
        "tiers": [{"up_to": "1000", "unit_amount": "1.00"}, {"up_to": None, "unit_amount": "0.50"}],
    }
    body = preview(admin_client, {"price": price, "quantity": "1001", "currency": "USD"}).json()
    assert body["volume_cliffs"] == ["1000"]
    assert (body["amount"], body["rounded_amount"]) == ("500.5", "500.50")
    assert [(s["quantity"], s["amount"]) for s in body["samples"]] == [("0", "0"), ("1000", "1000"), ("1001", "500.5")]


@pytest.mark.django_db
def test_example_of_a_percentage_price_takes_the_events(admin_client):
    price = {"model": "percentage", "rate": "2.9", "fixed_amount": "0.30", "free_events": 1}
    body = preview(admin_client, {"price": price, "event_values": ["10.00", "100.00", "20.00"], "currency": "USD"})
    assert body.status_code == 200, body.content
    body = body.json()
    assert (body["quantity"], body["amount"], body["rounded_amount"]) == ("130", "4.08", "4.08")
    assert [(row["label"], row["text"]) for row in body["breakdown"]] == [
        ("free_events", line("1", "0.00", "0.00", "0.00")),
        ("rate", line("120", "0.029", "0.00", "3.48")),
        ("fixed_fee", line("2", "0.30", "0.00", "0.60")),
        ("per_event_bounds", line("0", "0.00", "0.00", "0.00")),
    ]
    assert body["samples"] == []


# Each refused example: (body, the exact error). One test, one sign-in: allauth rate-limits
# logins per IP (see the report on ACCOUNT_RATE_LIMITS).
BAD_EXAMPLES = [
    (
        {"price": NOT_ASCENDING, "quantity": "10", "currency": "USD"},
        {
            "code": "tiers_not_ascending",
            "message": "up_to must be greater than 1000 (bounds strictly ascend from 0).",
            "path": "price.tiers[1].up_to",
        },
    ),
    (
        {"price": {"model": "per_unit", "unit_amount": 0.002}, "quantity": "10", "currency": "USD"},
        {
            "code": "not_a_decimal_string",
            "message": 'must be a decimal string such as "1.50", not float.',
            "path": "price.unit_amount",
        },
    ),
    (
        {"price": {"model": "flat"}, "quantity": "10", "currency": "USD"},
        {
            "code": "unknown_model",
            "message": "unknown model 'flat'; expected one of per_unit, graduated, volume, package, percentage.",
            "path": "price.model",
        },
    ),
    (
        {"price": GRADUATED, "quantity": "-5", "currency": "USD"},
        {"code": "negative_quantity", "message": "quantity must not be negative (got -5).", "path": "quantity"},
    ),
    (
        {"price": GRADUATED, "quantity": "1e3", "currency": "USD"},
        {
            "code": "not_a_decimal_string",
            "message": "'1e3' is not a decimal string such as \"1500\".",
            "path": "quantity",
        },
    ),
    (
        {"price": GRADUATED, "quantity": "10", "currency": "XXY"},
        {"code": "invalid_currency", "message": "'XXY' is not an ISO 4217 currency code.", "path": "currency"},
    ),
    (
        {"price": {"model": "percentage", "rate": "1"}, "quantity": "10", "currency": "USD"},
        {
            "code": "event_values_required",
            "message": "a percentage price needs the value of each event (event_values).",
            "path": "event_values",
        },
    ),
    (
        {"price": GRADUATED, "currency": "USD"},
        {"code": "missing_field", "message": "'quantity' is required.", "path": "quantity"},
    ),
]


@pytest.mark.django_db
def test_example_of_a_bad_request_is_a_precise_error(admin_client):
    before = counts()
    for body, error in BAD_EXAMPLES:
        response = preview(admin_client, body)
        assert (response.status_code, response.json()) == (400, {"error": error}), body
    response = admin_client.post(PREVIEW_URL, "{", content_type="application/json")
    assert (response.status_code, response.json()) == (
        400,
        {"error": {"code": "malformed_json", "message": "The body is not valid JSON.", "path": ""}},
    )
    assert counts() == before


@pytest.mark.django_db
def test_example_endpoint_needs_post_and_the_csrf_token(admin_client, tenant_a):
    response = admin_client.get(PREVIEW_URL)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"

    strict = Client(enforce_csrf_checks=True, HTTP_HOST=tenant_a.get_primary_domain().domain)
    strict.cookies = admin_client.cookies
    body = {"price": GRADUATED, "quantity": "10", "currency": "USD"}
    assert preview(strict, body).status_code == 403
    assert strict.get(ADD_URL).status_code == 200  # renders the form, which sets the CSRF cookie
    token = strict.cookies["csrftoken"].value
    response = preview(strict, body, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert response.json()["amount"] == "0"


# --- who may -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "support"])
def test_staff_without_plan_rights_view_but_cannot_edit_or_preview(client_a, meters, role):
    plan = Plan.objects.create(code="basic", name="Basic", currency="USD")
    PlanVersion.objects.create(plan=plan, version=1)
    signed_in(client_a, role)
    before = counts()

    assert client_a.get("/admin/billing/plan/").status_code == 200
    change = client_a.get(f"/admin/billing/plan/{plan.pk}/change/")
    assert change.status_code == 200
    assert "new-version" not in change.content.decode()
    assert 'name="_save"' not in change.content.decode()
    assert client_a.get(f"/admin/billing/planversion/{plan.versions.get().pk}/change/").status_code == 200

    assert client_a.get(ADD_URL).status_code == 403
    assert client_a.post(ADD_URL, plan_data([{"meter": "calls", "price": GRADUATED}])).status_code == 403
    new_version = f"/admin/billing/plan/{plan.pk}/new-version/"
    assert client_a.get(new_version).status_code == 403
    response = client_a.post(new_version, version_data([{"meter": "calls", "price": GRADUATED}], initial=0))
    assert response.status_code == 403
    response = preview(client_a, {"price": GRADUATED, "quantity": "10", "currency": "USD"})
    assert response.status_code == 403
    assert response.json() == {
        "error": {"code": "permission_denied", "message": "Your staff role may not edit prices.", "path": ""}
    }
    assert counts() == before
    assert list(plan.versions.values_list("version", flat=True)) == [1]


@pytest.mark.django_db
def test_finance_may_make_plans(client_a, meters):
    signed_in(client_a, "finance")
    assert client_a.post(ADD_URL, plan_data([{"meter": "calls", "price": GRADUATED}])).status_code == 302
    assert list(PlanVersion.objects.values_list("plan__code", "version")) == [("pro", 1)]


@pytest.mark.django_db
def test_customers_and_anonymous_visitors_reach_none_of_it(client_a, meters):
    plan = Plan.objects.create(code="basic", name="Basic", currency="USD")
    new_version = f"/admin/billing/plan/{plan.pk}/new-version/"
    before = counts()

    for path in (ADD_URL, new_version, PREVIEW_URL):
        response = client_a.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")

    customer = UserFactory()
    assert client_a.post("/accounts/login/", {"login": customer.email, "password": PASSWORD}).status_code == 302
    for path in (ADD_URL, new_version, PREVIEW_URL, "/admin/billing/plan/"):
        assert client_a.get(path).status_code == 403
    assert client_a.post(ADD_URL, plan_data([{"meter": "calls", "price": GRADUATED}])).status_code == 403
    assert client_a.post(new_version, version_data([], initial=0)).status_code == 403
    response = preview(client_a, {"price": GRADUATED, "quantity": "10", "currency": "USD"})
    assert response.status_code == 403 and b"You may not open this page" in response.content  # the site's 403
    assert counts() == before
