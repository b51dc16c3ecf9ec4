"""Operations endpoints, answered before tenant resolution so they work on any host:

- /healthz: the process is alive (no I/O);
- /readyz: PostgreSQL and Redis answer (503 with what failed otherwise);
- /metrics: Prometheus metrics, only with `Authorization: Bearer <METRICS_TOKEN>`, or from a
  loopback address when no token is configured. Never public.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse

logger = logging.getLogger(__name__)


def _database_ok() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"{type(exc).__name__}: {exc}"[:200]


def _redis_ok() -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"[:200]


def _metrics_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(supplied.encode(), token.encode())
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


class HealthMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path
        if path == "/healthz":
            return JsonResponse({"status": "ok"})
        if path == "/readyz":
            failures = {name: error for name, error in (("postgres", _database_ok()), ("redis", _redis_ok())) if error}
            if failures:
                logger.warning("not ready", extra={"failures": failures})
                return JsonResponse({"status": "unavailable", "failures": failures}, status=503)
            return JsonResponse({"status": "ok"})
        if path == "/metrics":
            if not _metrics_allowed(request):
                return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
            from django_prometheus.exports import ExportToDjangoView

            return ExportToDjangoView(request)
        return self.get_response(request)
