"""A customer organization's team (issue 13 flow 9): inviting people by email, their role inside
the organization, removing them. The owner is whoever the organization was provisioned for: the
portal neither grants nor removes that role, so an organization always keeps its owner. Changes
are audited by django-auditlog (Membership is registered) with the actor of `audit_actor`."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts.audit import Actor, audit_actor
from accounts.models import User
from accounts.services.user import member_user_create, user_invite
from billing.models import MemberRole, Membership, Organization
from core.errors import DomainError

# What a team admin may give: every role but the owner's.
ASSIGNABLE_ROLES = (MemberRole.ADMIN, MemberRole.BILLING, MemberRole.VIEWER)


def _role_checked(role: str) -> str:
    if role not in ASSIGNABLE_ROLES:
        raise DomainError("Choose admin, billing or viewer.", code="invalid_role")
    return role


def membership_invite(*, actor: Actor, organization: Organization, email: str, role: str, base_url: str) -> Membership:
    """Add the person with `email` to the organization with `role`. Someone without an account
    gets one and an invitation to set its password (accounts.services.user, mailed on commit);
    someone invited before who never set a password gets a fresh link; an existing account is
    simply added. Staff accounts are the seller's people, not a customer's: refused."""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise DomainError("Enter a valid email address.", code="invalid_email") from None
    role = _role_checked(role)
    with audit_actor(actor), transaction.atomic():
        user = User.objects.filter(email__iexact=email).first()
        if user is not None and user.staff_role is not None:
            raise DomainError("This address belongs to a staff account.", code="staff_account")
        if user is None:
            user = member_user_create(email=email, password=None, actor=actor, base_url=base_url)
        elif not user.has_usable_password():
            user_invite(user=user, base_url=base_url, actor=actor)
        try:
            with transaction.atomic():
                membership = Membership.objects.create(user=user, organization=organization, role=role)
        except IntegrityError:
            raise DomainError(f"{email} is already a member.", code="already_member") from None
    return membership


def _member_locked(organization: Organization, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .filter(pk=membership_id, organization=organization)
    ).first()
    if membership is None:
        raise DomainError("No such member.", code="not_found", status_code=404)
    if membership.role == MemberRole.OWNER:
        raise DomainError("The owner's membership cannot be changed here.", code="owner_fixed")
    return membership


def membership_role_set(*, actor: Actor, organization: Organization, membership_id: int, role: str) -> Membership:
    role = _role_checked(role)
    with audit_actor(actor), transaction.atomic():
        membership = _member_locked(organization, membership_id)
        if membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
    return membership


def membership_remove(*, actor: Actor, organization: Organization, membership_id: int) -> None:
    """Take the person out of the organization; their account stays (it may belong to others)."""
    with audit_actor(actor), transaction.atomic():
        _member_locked(organization, membership_id).delete()
