from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django_tenants.middleware.main import TenantMainMiddleware

from tenants.selectors import tenant_get_for_host

logger = logging.getLogger(__name__)


class CachedTenantMiddleware(TenantMainMiddleware):
    """django-tenants' middleware with the host lookup cached (tenants.selectors)."""

    def get_tenant(self, domain_model, hostname):
        tenant = tenant_get_for_host(host=hostname)
        if tenant is None:
            raise domain_model.DoesNotExist(hostname)
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
