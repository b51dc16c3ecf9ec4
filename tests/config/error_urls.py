"""The tenant URLconf plus views that fail, for tests/config/test_error_pages.py."""

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.urls import include, path


def boom(request):
    raise RuntimeError("internal detail that must not reach the page")


def forbidden(request):
    raise PermissionDenied("internal reason")


def bad(request):
    raise SuspiciousOperation("internal reason")


urlpatterns = [
    path("test-errors/boom/", boom),
    path("test-errors/forbidden/", forbidden),
    path("test-errors/bad/", bad),
    path("", include("config.urls_tenant")),
]
