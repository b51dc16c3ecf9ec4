"""Accounts are made by someone the tenant trusts (an owner, provisioning, staff inviting a
customer member), never by self sign-up. An account made with a password (provisioning prints it)
is ready; one made without gets an invitation: an email with a link to set its password. The
link is allauth's password-reset key (one use: it is bound to the password hash, and expires after
PASSWORD_RESET_TIMEOUT, 3 days), so "Forgot your password?" sends a fresh one. Following a link
mailed to the account's address proves the address: `user_email_proven` marks it verified, so the
first sign-in asks neither for email verification nor for the password again."""

from __future__ import annotations

import logging
from urllib.parse import quote

from allauth.account import app_settings as allauth_settings
from allauth.account.models import EmailAddress
from allauth.account.utils import user_pk_to_url_str
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.audit import Actor
from accounts.models import StaffRole, User

logger = logging.getLogger(__name__)


def _user_create(*, email: str, password: str | None, base_url: str, actor: Actor, **fields) -> User:
    if password is None and not base_url:
        raise ValueError("an account without a password is invited: base_url (the tenant's site) is needed")
    with transaction.atomic(savepoint=False):
        user = User.objects.create_user(email=email, password=password, **fields)
        # With a password the creator vouches for the address; an invited one is verified when
        # its owner follows the invitation link.
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=password is not None)
        if password is None:
            user_invite(user=user, base_url=base_url, actor=actor)
    return user


def staff_user_create(
    *, email: str, password: str | None, role: str, actor: Actor, base_url: str = "", name: str = ""
) -> User:
    """A staff account with `role`; without a password, invited by email (`base_url`: the
    tenant's site, e.g. https://acme.example.com). `actor` is recorded by the audit log context."""
    if role not in StaffRole.values:
        raise ValueError(f"unknown staff role {role!r}")
    return _user_create(email=email, password=password, base_url=base_url, actor=actor, staff_role=role, name=name)


def member_user_create(
    *, email: str, password: str | None, name: str = "", actor: Actor = None, base_url: str = ""
) -> User:
    """A customer portal account (no staff role); without a password, invited by email."""
    return _user_create(email=email, password=password, base_url=base_url, actor=actor, name=name)


def user_invite(*, user: User, base_url: str, actor: Actor) -> None:
    """Email `user` a link to set a password at `base_url`, after the transaction commits. Sent
    again, it makes a fresh link (earlier ones keep working until the password is set)."""
    token = allauth_settings.PASSWORD_RESET_TOKEN_GENERATOR().make_token(user)
    key = f"{user_pk_to_url_str(user)}-{token}"
    # allauth's own URL shape for a reset key (allauth.account.internal.flows.password_reset).
    path = reverse("account_reset_password_from_key", kwargs={"uidb36": "UID", "key": "KEY"})
    tenant = getattr(connection, "tenant", None)
    context = {
        "user": user,
        "site_name": getattr(tenant, "name", "") or "Billing",
        "invited_by": actor.name or actor.email if actor else "",
        "role": StaffRole(user.staff_role).label if user.staff_role else "",
        "link": base_url.rstrip("/") + path.replace("UID-KEY", quote(key)),
        "days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
    }
    subject = " ".join(render_to_string("accounts/email/invitation_subject.txt", context).split())
    body = render_to_string("accounts/email/invitation_message.txt", context)

    def send() -> None:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email], fail_silently=False)
        logger.info("invitation sent", extra={"user": user.pk})

    transaction.on_commit(send)


def user_email_proven(*, user: User) -> None:
    """`user` followed a link mailed to their address (an invitation or a password reset): the
    address is theirs, so it is marked verified. Not if the account has other addresses: the
    link may have gone to one of those (a reset is mailed to any address of the account)."""
    addresses = list(EmailAddress.objects.filter(user=user))
    if any(address.email.lower() != user.email.lower() for address in addresses):
        return
    if addresses:
        EmailAddress.objects.filter(pk=addresses[0].pk, verified=False).update(verified=True)
    else:  # accounts made before invitations existed had no address row
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
