"""What the billing and invoicing APIs read from a request: query parameters and the organization
a path or parameter names, as the caller may see it."""

from __future__ import annotations

from accounts.api.principal import principal_get
from billing.models import Organization
from billing.selectors.organization import organization_visible_get
from core.errors import DomainError

# PostgreSQL `integer` (Django's IntegerField and PositiveIntegerField): counts and version
# numbers the API takes are bounded by it, so a larger one is a 400, not a database error.
INTEGER_COLUMN_MAX = 2**31 - 1


def param_checked(name: str, value: str) -> str:
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
    if "\x00" in value:
        raise DomainError(f"'{name}' must not contain NUL characters.", code="invalid_parameter")
    return value


def param(request, name: str) -> str | None:
    """The query parameter, stripped; None when absent or blank."""
    return request.query_params.get(name, "").strip() or None


def param_required(request, name: str) -> str:
    value = param(request, name)
    if value is None:
        raise DomainError(f"The query parameter '{name}' is required.", code="missing_parameter")
    return param_checked(name, value)


def param_choice(request, name: str, choices: list[str]) -> str | None:
    """The query parameter when it is one of `choices`; None when absent; else 400."""
    value = param(request, name)
    if value is not None and value not in choices:
        raise DomainError(f"'{name}' must be one of {', '.join(choices)}.", code="invalid_parameter")
    return value


def organization_visible(request, external_id: str, *, code: str = "not_found") -> Organization:
    """The organization `external_id` if the caller may see it, else 404 with `code` (the same
    answer for one that does not exist)."""
    organization = organization_visible_get(principal=principal_get(request), external_id=external_id)
    if organization is None:
        raise DomainError(f"No organization {external_id!r}.", code=code, status_code=404)
    return organization
