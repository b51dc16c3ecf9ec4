import pytest

from tests.factories import MembershipFactory, OrganizationFactory, PlanVersionFactory, subscription_create


@pytest.mark.django_db
def test_member_sees_own_organization_and_subscription(in_a, client_a):
    membership = MembershipFactory(organization__external_id="x-org", organization__name="X Org")
    subscription_create(organization=membership.organization, plan_version=PlanVersionFactory(plan__name="Pro"))
    client_a.force_login(membership.user)

    home = client_a.get("/")
    assert home.status_code == 302 and home["Location"] == "/organizations/x-org/"
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        page = client_a.get("/organizations/x-org/")
    # session, user, the user's organizations, the current subscription, its snapshot (phases,
    # versions, charges), what invoices billed for the period, the bill's inputs (billed usage,
    # billed fees, coupon redemptions), the meters (none: no usage statements), the period's
    # invoices; django-tenants' domain lookup and SET search_path statements aside.
    sql = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SET ")]
    assert len([q for q in sql if "tenants_domain" not in q]) == 13
    assert page.status_code == 200
    assert b"X Org" in page.content and b"Pro" in page.content and b"$49.00 per month" in page.content


@pytest.mark.django_db
def test_member_of_x_gets_404_for_y(in_a, client_a):
    membership = MembershipFactory(organization__external_id="x-org")
    OrganizationFactory(external_id="y-org", name="Y Secret")
    client_a.force_login(membership.user)
    response = client_a.get("/organizations/y-org/")
    assert response.status_code == 404
    assert b"Y Secret" not in response.content


@pytest.mark.django_db
def test_login_page_renders_without_javascript(client_a):
    response = client_a.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="login"' in response.content and b'name="password"' in response.content
    assert b"/static/vendor/pico.min.css" in response.content
    assert b"http://" not in response.content.replace(b"http://www.w3.org", b"")


@pytest.mark.django_db
def test_signup_is_closed(client_a, in_a):
    from accounts.models import User

    response = client_a.get("/accounts/signup/")
    assert response.status_code == 200
    assert b"Sign Up Closed" in response.content
    attempt = client_a.post(
        "/accounts/signup/", {"email": "new@x.example", "password1": "a-Long-pass-9", "password2": "a-Long-pass-9"}
    )
    assert b"Sign Up Closed" in attempt.content
    assert not User.objects.filter(email="new@x.example").exists()
