"""Users added by staff are invited: an email with a link to choose a password, which proves the
address (no second verification), signs them in, and sends staff on to enrol TOTP once. Sign-up
is closed, and neither the sign-in page nor a password reset for an unknown address offers it."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from accounts.models import User
from accounts.services.user import member_user_create, staff_user_create, user_email_proven
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory, totp_enable
from tests.helpers import staff_login

NEW_PASSWORD = "a-fresh-and-long-passphrase-42"
LINK = re.compile(r"http://[^/\s]+(/accounts/password/reset/key/[^\s]+/)")


@pytest.fixture
def owner_client(client_a, staff):
    staff("owner", name="Olga Owner")
    return client_a


def invite_in_admin(client, capture, **fields) -> mail.EmailMessage:
    mail.outbox.clear()
    with capture(execute=True):
        response = client.post("/admin/accounts/user/add/", fields)
    assert response.status_code == 302, response.content[:3000]
    [message] = mail.outbox
    return message


def choose_password(tenant_a, path: str) -> tuple[Client, object]:
    """A fresh browser following the invitation link and choosing a password."""
    browser = Client(HTTP_HOST=tenant_a.get_primary_domain().domain)
    response = browser.get(path)
    assert response.status_code == 302  # allauth moves the key out of the URL into the session
    form_url = response["Location"]
    assert form_url.endswith("-set-password/")
    assert browser.get(form_url).status_code == 200
    response = browser.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, follow=True)
    return browser, response


@pytest.mark.django_db
def test_staff_added_in_the_admin_is_invited_sets_a_password_and_is_asked_to_enrol(
    owner_client, tenant_a, django_capture_on_commit_callbacks
):
    message = invite_in_admin(
        owner_client,
        django_capture_on_commit_callbacks,
        email="Nia.Finance@Example.com",
        name="Nia",
        staff_role="finance",
    )
    user = User.objects.get(email="nia.finance@example.com")
    assert (user.staff_role, user.name, user.has_usable_password()) == ("finance", "Nia", False)
    assert message.to == ["nia.finance@example.com"]
    assert message.subject == f"You are invited to {tenant_a.name}"
    assert f"Olga Owner has invited you to {tenant_a.name} as Finance staff." in message.body
    assert "authenticator app" in message.body and "3 days" in message.body
    host = tenant_a.get_primary_domain().domain
    assert f"http://{host}/accounts/password/reset/key/" in message.body
    assert not EmailAddress.objects.get(user=user).verified  # not before the link is used

    browser, response = choose_password(tenant_a, LINK.search(message.body).group(1))
    # signed in at once, no email verification, no second password prompt: on to enrolment
    assert response.redirect_chain[-1][0] == "/accounts/2fa/totp/activate/?next=%2Fstaff%2F"
    assert response.status_code == 200 and "authenticator" in response.content.decode().lower()
    assert EmailAddress.objects.get(user=user).verified
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)

    # a later sign-in with the password goes straight on too (to enrolment, until done)
    browser.post("/accounts/logout/")
    response = browser.post("/accounts/login/", {"login": "nia.finance@example.com", "password": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert browser.get("/staff/")["Location"] == "/accounts/2fa/totp/activate/?next=%2Fstaff%2F"

    # the link works once
    again = Client(HTTP_HOST=host).get(LINK.search(message.body).group(1))
    assert again.status_code == 200 and again.context["token_fail"]


@pytest.mark.django_db
def test_member_added_in_the_admin_is_invited_and_lands_in_the_portal(
    owner_client, tenant_a, django_capture_on_commit_callbacks
):
    message = invite_in_admin(
        owner_client, django_capture_on_commit_callbacks, email="ada@acme.example", name="Ada", staff_role=""
    )
    user = User.objects.get(email="ada@acme.example")
    assert user.staff_role is None
    assert f"Olga Owner has invited you to {tenant_a.name}. You sign in with this email address" in message.body
    assert "authenticator" not in message.body
    MembershipFactory(user=user, organization=OrganizationFactory(external_id="acme"))

    _, response = choose_password(tenant_a, LINK.search(message.body).group(1))
    assert response.redirect_chain[-1][0] == "/organizations/acme/"
    assert response.status_code == 200
    assert EmailAddress.objects.get(user=user).verified


@pytest.mark.django_db
def test_the_services_invite_when_no_password_is_given(in_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        staff = staff_user_create(
            email="s@example.com", password=None, role="support", actor=None, base_url="https://a.example/"
        )
        member = member_user_create(email="m@example.com", password=None, base_url="https://a.example")
    assert [m.to for m in mail.outbox] == [["s@example.com"], ["m@example.com"]]
    assert all("https://a.example/accounts/password/reset/key/" in m.body for m in mail.outbox)
    assert not staff.has_usable_password() and not member.has_usable_password()
    with pytest.raises(ValueError, match="base_url"):
        member_user_create(email="x@example.com", password=None)
    assert not User.objects.filter(email="x@example.com").exists()

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ready = member_user_create(email="ready@example.com", password="a-long-enough-password")
    assert mail.outbox == []  # a password given: nothing to invite to
    assert EmailAddress.objects.get(user=ready).verified


@pytest.mark.django_db
def test_a_link_proves_only_the_accounts_single_address(in_a):
    user = UserFactory()
    EmailAddress.objects.filter(user=user).update(verified=False)
    EmailAddress.objects.create(user=user, email="other@example.com", verified=False)
    user_email_proven(user=user)
    assert not EmailAddress.objects.filter(user=user, verified=True).exists()
    legacy = User.objects.create_user(email="legacy@example.com", password=None)  # no address row
    user_email_proven(user=legacy)
    assert EmailAddress.objects.get(user=legacy).verified


@pytest.mark.django_db
def test_invite_again_action_only_for_users_without_a_password(
    owner_client, tenant_a, django_capture_on_commit_callbacks
):
    pending = User.objects.create_user(email="pending@example.com", password=None)
    active = UserFactory(email="active@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/admin/accounts/user/",
            {"action": "invite_again", "_selected_action": [pending.pk, active.pk], "index": "0"},
            follow=True,
        )
    assert [m.to for m in mail.outbox] == [["pending@example.com"]]
    page = response.content.decode()
    assert "Invitation emailed to pending@example.com." in page
    assert "No invitation for active@example.com: they have chosen a password" in page


@pytest.mark.django_db
def test_password_reset_for_an_unknown_address_offers_no_sign_up(client_a, in_a):
    response = client_a.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302  # the same answer as for a known address
    [message] = mail.outbox
    assert message.to == ["nobody@example.com"]
    assert message.subject.endswith("No account for this address")
    assert "There is no account with this address." in message.body
    assert "ask your administrator" in message.body
    assert "sign up" not in message.body.lower() and "/accounts/signup/" not in message.body


@pytest.mark.django_db
def test_the_sign_in_page_does_not_offer_sign_up(client_a, tenant_a):
    page = client_a.get("/accounts/login/").content.decode()
    assert "sign up" not in page.lower() and "/accounts/signup/" not in page
    assert f"Accounts are created by {tenant_a.name}" in page and "Ask your administrator" in page
    assert "/accounts/password/reset/" in page  # "Forgot your password?" stays


@pytest.mark.django_db
def test_first_enrolment_right_after_sign_in_asks_no_second_password_but_changes_do(client_a, in_a):
    import time_machine
    from django.utils import timezone

    from tests.factories import PASSWORD

    newcomer = UserFactory(staff_role="support")
    with time_machine.travel(timezone.now(), tick=True) as traveller:
        assert client_a.post("/accounts/login/", {"login": newcomer.email, "password": PASSWORD}).status_code == 302
        assert client_a.get("/accounts/2fa/totp/activate/").status_code == 200  # no password again
        traveller.shift(301)  # past allauth's reauthentication window
        assert client_a.get("/accounts/2fa/totp/activate/")["Location"].startswith("/accounts/reauthenticate/")

    client_a.post("/accounts/logout/")
    enrolled = UserFactory(staff_role="support")
    staff_login(client_a, email=enrolled.email, totp_secret=totp_enable(enrolled))
    response = client_a.get("/accounts/2fa/totp/deactivate/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/reauthenticate/")
