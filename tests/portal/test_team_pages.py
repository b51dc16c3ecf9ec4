"""The portal's team page (issue 13 flow 9): members and roles, invitations by email, removal,
links to password and authenticator pages, and the organization's read-only usage key (shown
once, reads only its own organization's usage). Refusals leave the team as it was."""

from __future__ import annotations

import pytest
import time_machine
from auditlog.models import LogEntry
from django.core import mail
from django.test import Client

from accounts.models import APIKey
from billing.models import Membership
from tests.factories import APIKeyFactory, MembershipFactory, OrganizationFactory, UserFactory
from tests.helpers import bearer
from tests.portal.scenario import NOW, seed

pytestmark = pytest.mark.django_db
TEAM = "/organizations/acme/team/"


@pytest.fixture
def acme(in_a, client_a):
    seeded = seed()
    with time_machine.travel(NOW, tick=False):
        client_a.force_login(seeded["user"])
        yield seeded


def team_of(seeded) -> list[tuple[str, str]]:
    rows = Membership.objects.filter(organization=seeded["organization"]).order_by("pk")
    return [(m.user.email, m.role) for m in rows]


def member_client(tenant_a, seeded, role: str) -> tuple[Client, Membership]:
    membership = MembershipFactory(
        user=UserFactory(email=f"{role}@acme.example"), organization=seeded["organization"], role=role
    )
    client = Client(HTTP_HOST=tenant_a.get_primary_domain().domain)
    client.force_login(membership.user)
    return client, membership


def test_invite_a_new_person_creates_the_account_and_mails_the_link(acme, client_a, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(f"{TEAM}invite/", {"email": " New@Acme.example ", "role": "billing"})
    assert response.status_code == 302 and response["Location"] == TEAM
    assert team_of(acme) == [("owner@acme.example", "owner"), ("new@acme.example", "billing")]
    [message] = mail.outbox
    assert message.to == ["new@acme.example"] and "/accounts/password/reset/key/" in message.body
    added = Membership.objects.get(user__email="new@acme.example")
    entry = LogEntry.objects.get_for_object(added).get(action=LogEntry.Action.CREATE)
    assert entry.actor == acme["user"]
    page = client_a.get(TEAM).content.decode()
    assert 'data-member="new@acme.example"' in page and "invited" in page


def test_invite_an_existing_account_adds_it_without_mail(acme, client_a, django_capture_on_commit_callbacks):
    UserFactory(email="known@example.com")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert client_a.post(f"{TEAM}invite/", {"email": "known@example.com", "role": "viewer"}).status_code == 302
    assert team_of(acme)[-1] == ("known@example.com", "viewer") and mail.outbox == []


@pytest.mark.parametrize(
    ("email", "role", "error"),
    [
        ("owner@acme.example", "viewer", "owner@acme.example is already a member."),
        ("not an email", "viewer", "Enter a valid email address."),
        ("x@acme.example", "owner", "Choose admin, billing or viewer."),
        ("x@acme.example", "", "Choose admin, billing or viewer."),
        ("staff@seller.example", "viewer", "This address belongs to a staff account."),
    ],
)
def test_refused_invitations_change_nothing(acme, client_a, email, role, error, django_capture_on_commit_callbacks):
    UserFactory(email="staff@seller.example", staff_role="support")
    mail.outbox.clear()
    users_before = set(acme["user"].__class__.objects.values_list("email", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(f"{TEAM}invite/", {"email": email, "role": role})
    assert response.status_code == 400 and response.context["error"] == error
    assert team_of(acme) == [("owner@acme.example", "owner")]
    assert set(acme["user"].__class__.objects.values_list("email", flat=True)) == users_before
    assert mail.outbox == []


def test_change_a_role_and_remove_a_member(acme, client_a, tenant_a):
    _, membership = member_client(tenant_a, acme, "viewer")
    assert client_a.post(f"{TEAM}role/", {"member": membership.pk, "role": "admin"}).status_code == 302
    assert team_of(acme)[-1] == ("viewer@acme.example", "admin")
    assert client_a.post(f"{TEAM}remove/", {"member": membership.pk}).status_code == 302
    assert team_of(acme) == [("owner@acme.example", "owner")]
    assert Membership.objects.filter(pk=membership.pk).count() == 0


def test_the_owner_cannot_be_demoted_or_removed(acme, client_a, tenant_a):
    client, _ = member_client(tenant_a, acme, "admin")
    owner = Membership.objects.get(role="owner")
    for path, data in (("role/", {"member": owner.pk, "role": "viewer"}), ("remove/", {"member": owner.pk})):
        response = client.post(TEAM + path, data)
        assert response.status_code == 400
        assert response.context["error"] == "The owner's membership cannot be changed here."
    assert team_of(acme) == [("owner@acme.example", "owner"), ("admin@acme.example", "admin")]


def test_another_organizations_member_cannot_be_touched(acme, client_a):
    other = MembershipFactory(organization=OrganizationFactory(external_id="globex"), role="viewer")
    for path, data in (("role/", {"member": other.pk, "role": "admin"}), ("remove/", {"member": other.pk})):
        response = client_a.post(TEAM + path, data)
        assert response.status_code == 400 and response.context["error"] == "No such member."
    assert Membership.objects.get(pk=other.pk).role == "viewer"
    assert client_a.get("/organizations/globex/team/").status_code == 404


@pytest.mark.parametrize("role", ["billing", "viewer"])
def test_billing_and_viewer_members_see_the_team_but_may_not_manage_it(acme, tenant_a, role):
    client, membership = member_client(tenant_a, acme, role)
    page = client.get(TEAM)
    assert page.status_code == 200 and "Invite a member" not in page.content.decode()
    assert client.post(f"{TEAM}invite/", {"email": "x@acme.example", "role": "viewer"}).status_code == 403
    assert client.post(f"{TEAM}role/", {"member": membership.pk, "role": "admin"}).status_code == 403
    assert client.post(f"{TEAM}remove/", {"member": membership.pk}).status_code == 403
    assert client.post(f"{TEAM}keys/", {"name": "mine"}).status_code == 403
    assert team_of(acme) == [("owner@acme.example", "owner"), (f"{role}@acme.example", role)]
    assert APIKey.objects.count() == 0


def test_post_without_csrf_token_is_refused(acme, tenant_a):
    client = Client(HTTP_HOST=tenant_a.get_primary_domain().domain, enforce_csrf_checks=True)
    client.force_login(acme["user"])
    assert client.post(f"{TEAM}invite/", {"email": "x@acme.example", "role": "viewer"}).status_code == 403
    assert client.post(f"{TEAM}keys/", {"name": "k"}).status_code == 403
    assert team_of(acme) == [("owner@acme.example", "owner")] and APIKey.objects.count() == 0


def test_password_and_authenticator_pages_are_linked_and_open_to_members(acme, client_a):
    page = client_a.get(TEAM).content.decode()
    assert 'href="/accounts/password/change/"' in page and 'href="/accounts/2fa/"' in page
    assert client_a.get("/accounts/password/change/").status_code == 200
    assert client_a.get("/accounts/2fa/").status_code == 200
    # allauth asks for the password again before an authenticator is added (recent sign-in)
    activate = client_a.get("/accounts/2fa/totp/activate/")
    assert activate.status_code == 302 and activate["Location"].startswith("/accounts/reauthenticate/")


def test_usage_key_secret_is_shown_once_and_reads_only_this_organizations_usage(acme, client_a, tenant_a):
    OrganizationFactory(external_id="globex", currency="EUR")
    response = client_a.post(f"{TEAM}keys/", {"name": "Grafana"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    secret = response.context["created"].secret
    assert secret in response.content.decode()
    key = APIKey.objects.get()
    assert (key.name, key.scopes, key.organization_id, key.created_by) == (
        "Grafana",
        ["read"],
        acme["organization"].pk,
        acme["user"],
    )
    page = client_a.get(TEAM).content.decode()
    assert secret not in page and f"{key.prefix}…" in page

    api = Client(HTTP_HOST=tenant_a.get_primary_domain().domain)
    own = api.get("/api/v1/customers/acme/usage", **bearer(secret))
    assert own.status_code == 200 and own.json()["meters"] == {"calls": "140"}
    one = api.get("/api/v1/usage?customer=acme&meter=calls", **bearer(secret))
    assert one.status_code == 200 and one.json()["value"] == "140"
    for path in ("/api/v1/customers/globex/usage", "/api/v1/usage?customer=globex&meter=calls"):
        assert api.get(path, **bearer(secret)).json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/usage?customer=never-seen&meter=calls", **bearer(secret)).status_code == 404
    for path in ("/api/v1/organizations", "/api/v1/organizations/acme", "/api/v1/invoices", "/api/v1/plans"):
        refused = api.get(path, **bearer(secret))
        assert refused.status_code == 403, path
        assert refused.json()["error"]["message"] == "This key reads its organization's usage only."

    assert client_a.post(f"{TEAM}keys/revoke/", {"key": key.prefix}).status_code == 302
    assert APIKey.objects.get().revoked_at is not None
    assert api.get("/api/v1/customers/acme/usage", **bearer(secret)).status_code == 401


def test_a_tenant_key_still_reads_every_organization(acme, tenant_a):
    secret = APIKeyFactory(scopes=["read"]).secret
    api = Client(HTTP_HOST=tenant_a.get_primary_domain().domain)
    assert api.get("/api/v1/usage?customer=never-seen&meter=calls", **bearer(secret)).status_code == 200


def test_an_organization_key_cannot_be_made_with_more_than_read(acme):
    from accounts.services.api_key import APIKeyError, apikey_create

    with pytest.raises(APIKeyError):
        apikey_create(name="x", scopes=["read", "write"], actor=None, organization=acme["organization"])
    assert APIKey.objects.count() == 0


def test_unnamed_key_is_refused(acme, client_a):
    response = client_a.post(f"{TEAM}keys/", {"name": "  "})
    assert response.status_code == 400 and response.context["error"] == "Give the key a name."
    assert APIKey.objects.count() == 0
