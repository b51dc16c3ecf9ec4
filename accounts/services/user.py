from __future__ import annotations

from allauth.account.models import EmailAddress
from django.db import transaction

from accounts.models import StaffRole, User


def staff_user_create(*, email: str, password: str | None, role: str, actor: User | None) -> User:
    """Create a staff account with a verified primary email (staff are created by an owner or by
    provisioning, who vouch for the address). `actor` is recorded by the audit log context."""
    if role not in StaffRole.values:
        raise ValueError(f"unknown staff role {role!r}")
    with transaction.atomic(savepoint=False):
        user = User.objects.create_user(email=email, password=password, staff_role=role)
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user


def member_user_create(*, email: str, password: str | None, name: str = "") -> User:
    """Create a customer portal account (no staff role) with a verified primary email."""
    with transaction.atomic(savepoint=False):
        user = User.objects.create_user(email=email, password=password, name=name)
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user
