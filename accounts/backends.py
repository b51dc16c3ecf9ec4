"""What each staff role may do: the one permission source of the admin, the staff pages and the
API (accounts.api.permissions declares the permission each API method needs).

Django permissions are `<app_label>.<action>_<model>`. Owners and admins may do everything (only
owners may grant the owner role, checked in the user admin); the others:
- finance: read everything, change billing (plans, coupons, credit, subscriptions), invoicing,
  payments and dunning (policies) data;
- support: read everything, change organizations and their members;
- viewer: read everything.
Meters (the metering app) are deliberately not finance's: what a meter counts is the seller's
integration with its product, and changing it rebuilds its rollups from raw events; finance prices
the meters that exist. Customer members have no staff role and so no staff permission at all.
Every staff permission also needs a session that passed the second factor (checked where the
session is known: accounts.selectors.staff).
"""

from __future__ import annotations

from django.contrib.auth.backends import BaseBackend

from accounts.models import StaffRole

_FINANCE_APPS = frozenset({"billing", "invoicing", "payments", "dunning", "djstripe"})
_SUPPORT_MODELS = frozenset({"billing.organization", "billing.membership"})


def staff_role_allows(role: str | None, perm: str) -> bool:
    if role is None:
        return False
    if role in (StaffRole.OWNER, StaffRole.ADMIN):
        return True
    app_label, _, codename = perm.partition(".")
    action, _, model = codename.partition("_")
    if action == "view":
        return True
    if role == StaffRole.FINANCE:
        return app_label in _FINANCE_APPS
    if role == StaffRole.SUPPORT:
        return f"{app_label}.{model}" in _SUPPORT_MODELS
    return False


class StaffRoleBackend(BaseBackend):
    """Grants permissions from the user's staff role; authenticates nobody (allauth does)."""

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return bool(user_obj.is_active and staff_role_allows(getattr(user_obj, "staff_role", None), perm))

    def has_module_perms(self, user_obj, app_label) -> bool:
        return bool(user_obj.is_active and getattr(user_obj, "staff_role", None))
