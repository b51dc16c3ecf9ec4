"""One Redis client per process and URL (its connection pool is reused), with short timeouts:
Redis helps (rate limits, live usage) but is never the record, so a slow Redis must not stall
ingestion or draining."""

from __future__ import annotations

import redis
from django.conf import settings

_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis:
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.25)
    return client
