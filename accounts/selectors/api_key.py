from __future__ import annotations

import time
from datetime import timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from accounts.models import APIKey
from accounts.models.api_key import KEY_PREFIX, apikey_digest

# last_used_at is a hint for people, not a ledger: refresh it at most once a minute per key so a
# busy key does not write a row per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
# Active keys are remembered in process for a few seconds (the ingestion path authenticates
# every request); a revocation therefore takes effect everywhere within CACHE_SECONDS.
CACHE_SECONDS = 5.0
_cache: dict[tuple[str, str], tuple[float, APIKey]] = {}


def apikey_cache_clear() -> None:
    _cache.clear()


def apikey_get_active(*, raw_key: str) -> APIKey | None:
    """The active key whose digest matches, or None (unknown, malformed or revoked)."""
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 128:
        return None
    digest = apikey_digest(raw_key)
    cache_key = (connection.schema_name, digest)
    now_mono = time.monotonic()
    hit = _cache.get(cache_key)
    if hit is not None and hit[0] > now_mono:
        return hit[1]
    key = APIKey.objects.filter(digest=digest, revoked_at__isnull=True).first()
    if key is None:
        _cache.pop(cache_key, None)
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        APIKey.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION), pk=key.pk
        ).update(last_used_at=now)
        key.last_used_at = now
    _cache[cache_key] = (now_mono + CACHE_SECONDS, key)
    return key
