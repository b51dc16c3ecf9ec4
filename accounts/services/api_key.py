"""API keys: created with their secret shown once, stored hashed, revoked but never deleted."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.audit import Actor, audit_actor
from accounts.models import APIKey, APIKeyScope
from accounts.models.api_key import KEY_PREFIX, apikey_digest
from accounts.selectors.api_key import apikey_cache_clear
from core.errors import DomainError


class APIKeyError(DomainError):
    code = "invalid_api_key_request"


@dataclass(frozen=True)
class APIKeyCreated:
    api_key: APIKey
    secret: str  # the full key; returned once, never stored


def apikey_create(*, name: str, scopes: list[str], actor: Actor, organization=None) -> APIKeyCreated:
    """Create a key `bk_<8 lookup chars>_<43 secret chars>` (256 bits of randomness in the secret).
    With `organization` (a billing.Organization) the key reads that organization's usage only
    (see APIKey.organization), so its scopes must be exactly `read`."""
    scopes = sorted(set(scopes))
    if organization is not None and scopes != [APIKeyScope.READ]:
        raise APIKeyError("an organization's key reads only: its scopes must be ['read']")
    unknown = [s for s in scopes if s not in APIKeyScope.values]
    if not scopes or unknown:
        raise APIKeyError(f"scopes must be a non-empty subset of {APIKeyScope.values}; unknown: {unknown}")
    if not name.strip():
        raise APIKeyError("name must not be empty")
    lookup = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}{lookup}_{secrets.token_urlsafe(32)}"
    with audit_actor(actor), transaction.atomic():
        key = APIKey.objects.create(
            name=name.strip(),
            prefix=f"{KEY_PREFIX}{lookup}",
            digest=apikey_digest(raw),
            scopes=scopes,
            created_by=actor,
            organization=organization,
        )
    return APIKeyCreated(api_key=key, secret=raw)


def apikey_revoke(*, api_key: APIKey, actor: Actor) -> APIKey:
    with audit_actor(actor), transaction.atomic():
        key = APIKey.objects.select_for_update().get(pk=api_key.pk)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
    apikey_cache_clear()  # this process at once; others within their cache's few seconds
    return key
