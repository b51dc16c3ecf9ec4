from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from accounts.models import APIKey
from accounts.services.api_key import KEY_PREFIX, apikey_digest

# last_used_at is a hint for people, not a ledger: refresh it at most once a minute per key so a
# busy key does not write a row per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def apikey_get_active(*, raw_key: str) -> APIKey | None:
    """The active key whose digest matches, or None (unknown, malformed or revoked)."""
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 128:
        return None
    key = APIKey.objects.filter(digest=apikey_digest(raw_key), revoked_at__isnull=True).first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        APIKey.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION), pk=key.pk
        ).update(last_used_at=now)
        key.last_used_at = now
    return key
