from __future__ import annotations

from allauth.account.models import EmailAddress
from django.db import transaction

from accounts.models import StaffRole, User


def _user_create(*, email: str, password: str | None, **fields) -> User:
    """A user with a verified primary email: accounts are made by someone who vouches for the
    address (an owner, provisioning, an invitation), never by self sign-up."""
    with transaction.atomic(savepoint=False):
        user = User.objects.create_user(email=email, password=password, **fields)
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user


def staff_user_create(*, email: str, password: str | None, role: str, actor: User | None) -> User:
    """A staff account with `role`. `actor` is recorded by the audit log context."""
    if role not in StaffRole.values:
        raise ValueError(f"unknown staff role {role!r}")
    return _user_create(email=email, password=password, staff_role=role)


def member_user_create(*, email: str, password: str | None, name: str = "") -> User:
    """A customer portal account (no staff role)."""
    return _user_create(email=email, password=password, name=name)
