from __future__ import annotations

import logging
import time

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django_tenants.middleware.main import TenantMainMiddleware

logger = logging.getLogger(__name__)
_TTL_SECONDS = 30.0
_cache: dict[str, tuple[float, object]] = {}


def tenant_cache_clear() -> None:
    _cache.clear()


class CachedTenantMiddleware(TenantMainMiddleware):
    """django-tenants' middleware with the host → tenant lookup kept in process for 30 s: the
    domain table changes when tenants are provisioned, not per request, and the lookup is a
    query on every request otherwise (the ingestion path counts every query)."""

    def get_tenant(self, domain_model, hostname):
        now = time.monotonic()
        hit = _cache.get(hostname)
        if hit is not None and hit[0] > now:
            return hit[1]
        tenant = super().get_tenant(domain_model, hostname)
        _cache[hostname] = (now + _TTL_SECONDS, tenant)
        return tenant

    def process_request(self, request):
        try:
            return super().process_request(request)
        except (OperationalError, InterfaceError):
            logger.warning("database unavailable while resolving the tenant", exc_info=True)
            return service_unavailable(request)


def service_unavailable(request) -> HttpResponse:
    """PostgreSQL is unreachable: a retryable 503 (JSON on the API), never a 500."""
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"error": {"code": "storage_unavailable", "message": "Storage is unavailable; retry shortly."}},
            status=503,
        )
    else:
        response = HttpResponse("Service temporarily unavailable.\n", status=503, content_type="text/plain")
    response["Retry-After"] = "1"
    return response


class DatabaseUnavailableMiddleware:
    """Turns a lost database connection during a view into the same 503."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, OperationalError | InterfaceError):
            logger.warning("database unavailable", exc_info=True)
            return service_unavailable(request)
        return None
