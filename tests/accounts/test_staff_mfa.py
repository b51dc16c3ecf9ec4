from urllib.parse import urlencode

import pytest

from tests.factories import UserFactory, totp_enable
from tests.helpers import staff_login


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client_a):
    for path in ("/admin/", "/staff/"):
        response = client_a.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.django_db
def test_staff_without_mfa_cannot_reach_the_admin(in_a, client_a):
    staff = UserFactory(staff_role="owner")
    client_a.force_login(staff)
    for path in ("/admin/", "/admin/billing/organization/", "/staff/"):
        response = client_a.get(path)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/2fa/totp/activate/?{urlencode({'next': path})}"


@pytest.mark.django_db
def test_staff_with_mfa_enrolled_but_not_verified_must_pass_the_second_factor(in_a, client_a):
    staff = UserFactory(staff_role="admin")
    totp_enable(staff)
    client_a.force_login(staff)  # a session that never passed the second factor
    response = client_a.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/reauthenticate/?next=%2Fadmin%2F"


@pytest.mark.django_db
def test_staff_who_signed_in_with_totp_reach_admin_and_staff_pages(in_a, client_a):
    staff = UserFactory(staff_role="viewer")
    secret = totp_enable(staff)
    staff_login(client_a, email=staff.email, totp_secret=secret)
    assert client_a.get("/admin/").status_code == 200
    assert client_a.get("/staff/").status_code == 200
    # viewers read but do not change
    assert client_a.get("/admin/billing/organization/").status_code == 200
    assert client_a.get("/admin/billing/organization/add/").status_code == 403


@pytest.mark.django_db
def test_wrong_totp_code_does_not_sign_in(in_a, client_a):
    staff = UserFactory(staff_role="owner")
    totp_enable(staff)
    response = client_a.post("/accounts/login/", {"login": staff.email, "password": "correct-horse-battery-staple"})
    assert response.status_code == 302
    response = client_a.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert response.status_code == 200  # the form again, with an error
    assert client_a.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_customer_members_are_not_staff(in_a, client_a):
    member = UserFactory()
    client_a.force_login(member)
    assert client_a.get("/admin/").status_code == 403
    assert client_a.get("/staff/").status_code == 403


def test_role_permissions():
    from accounts.backends import staff_role_allows

    assert staff_role_allows("owner", "accounts.change_user")
    assert staff_role_allows("admin", "billing.delete_plan")
    assert staff_role_allows("finance", "billing.change_plan")
    assert not staff_role_allows("finance", "accounts.change_user")
    assert staff_role_allows("support", "billing.change_organization")
    assert not staff_role_allows("support", "billing.change_plan")
    assert staff_role_allows("viewer", "billing.view_plan")
    assert not staff_role_allows("viewer", "billing.change_organization")
    assert not staff_role_allows(None, "billing.view_plan")
