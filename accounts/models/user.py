from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models


class StaffRole(models.TextChoices):
    """A tenant's own staff. What each role may do is in accounts.backends.StaffRoleBackend."""

    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    FINANCE = "finance", "Finance"
    SUPPORT = "support", "Support"
    VIEWER = "viewer", "Viewer"


class UserManager(BaseUserManager):
    def create_user(self, email: str, password: str | None = None, **fields):
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.setdefault("staff_role", StaffRole.OWNER)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in to one tenant: its staff (with a staff role) or a member of one of its
    customer organizations (billing.Membership). Users live in the tenant's schema, so the same
    email in two tenants is two unrelated accounts."""

    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=200, blank=True)
    staff_role = models.CharField(max_length=16, choices=StaffRole.choices, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(auto_now_add=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        # Emails are stored lower-case so uniqueness is case-insensitive.
        self.email = self.email.lower()

    @property
    def is_staff(self) -> bool:
        """Staff are the users with a staff role; the role, not a flag, decides."""
        return self.staff_role is not None
