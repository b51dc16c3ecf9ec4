"""One error shape for the whole API: `{"error": {"code", "message", "path"?, "fields"?}}` with a stable,
machine-readable code and a message a developer can act on.

Two layers give it: DRF's exception handler below for everything a DRF view raises, and
`ApiErrorMiddleware` for what never reaches one (a path no route matches, a 500, Django's own
400s), so no path under /api/ answers with an HTML error page, whatever DEBUG is."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django_guid import get_guid
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError

logger = logging.getLogger(__name__)

_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "validation_error",
}


def _flatten(detail, prefix=""):
    """DRF's nested error detail → {"field.path": [{"code", "message"}]}."""
    out: dict[str, list[dict[str, str]]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail) for item in detail):
            out[prefix or "non_field_errors"] = [{"code": item.code, "message": str(item)} for item in detail]
        else:
            for index, item in enumerate(detail):
                out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
    elif isinstance(detail, exceptions.ErrorDetail):
        out[prefix or "non_field_errors"] = [{"code": detail.code, "message": str(detail)}]
    return out


def exception_handler(exc, context):
    # Reading request.data: Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE (it would answer
    # an HTML 400), and a client may hang up mid-body.
    if isinstance(exc, RequestDataTooBig):
        return _error(413, "payload_too_large", f"The body exceeds {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
    if isinstance(exc, UnreadablePostError):
        return _error(400, "malformed_request", "The request body could not be read.")
    if isinstance(exc, SuspiciousOperation):
        return _error(400, "malformed_request", "The request was refused as malformed.")
    if isinstance(exc, DomainError):
        body = {"code": exc.code, "message": exc.message}
        if exc.path:
            body["path"] = exc.path  # where in the request the offending value is
        return Response({"error": body}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: logged and answered as 500 by Django
    code = _CODES.get(type(exc), getattr(exc, "default_code", "error"))
    if isinstance(exc, exceptions.ValidationError):
        body = {
            "code": "validation_error",
            "message": "The request has invalid fields.",
            "fields": _flatten(exc.detail),
        }
    else:
        detail = exc.detail
        message = str(detail) if not isinstance(detail, (list, dict)) else "Request refused."
        detail_code = getattr(detail, "code", None)
        if isinstance(exc, exceptions.AuthenticationFailed) and detail_code in {"invalid_api_key", "invalid_token"}:
            code = detail_code
        body = {"code": code, "message": message}
    response.data = {"error": body}
    return response


def _error(status: int, code: str, message: str) -> Response:
    return Response({"error": {"code": code, "message": message}}, status=status)


# What an error page becomes on an API path, by status (a 5xx is `internal_error`).
_PAGE_ERRORS = {
    400: ("malformed_request", "The request was refused as malformed."),
    403: ("permission_denied", "This request is not allowed."),
    404: ("not_found", "No API resource at this path."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("payload_too_large", "The request body is too large."),
}
_API_PREFIX = "/api/"


def _is_json(response: HttpResponse) -> bool:
    content_type = response.get("Content-Type", "").split(";")[0].strip()
    return content_type == "application/json" or content_type.endswith("+json")


def _json_error(response: HttpResponse) -> JsonResponse:
    status = response.status_code
    if status >= 500:
        request_id = get_guid()
        body = {
            "code": "internal_error",
            "message": f"The server failed to answer this request; quote request id {request_id} to support.",
            "request_id": request_id,
        }
    else:
        code, message = _PAGE_ERRORS.get(status, ("error", "The request was refused."))
        body = {"code": code, "message": message}
    answer = JsonResponse({"error": body}, status=status)
    for header in ("Allow", "Retry-After"):
        if header in response:
            answer[header] = response[header]
    return answer


class ApiErrorMiddleware:
    """API paths answer errors in the API's JSON shape, never an HTML page (in any DJANGO_ENV):
    a 404 for a path no route matches, Django's 400 for a suspicious request, a 500 (with the
    request id, already logged by Django) all become `{"error": {...}}`. And a DRF endpoint
    refuses a NUL character in its path or query parameters with 400 `invalid_parameter`
    before its view runs: PostgreSQL text cannot hold one, so it could only fail in the database.

    Sits just inside django_guid's middleware, so the request id is known, and outside the
    tenant middleware, so an unknown host's 404 on an API path is JSON too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(_API_PREFIX) and response.status_code >= 400 and not _is_json(response):
            return _json_error(response)
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        view_class = getattr(view_func, "cls", None)
        if not (isinstance(view_class, type) and issubclass(view_class, APIView)):
            return None  # the ingestion endpoint keeps its own codes (metering.api.events)
        if any("\x00" in str(value) for value in (*view_args, *view_kwargs.values())):
            problem = "The path must not contain NUL characters."
        elif any("\x00" in name or any("\x00" in v for v in values) for name, values in request.GET.lists()):
            problem = "Query parameters must not contain NUL characters."
        else:
            return None
        return JsonResponse({"error": {"code": "invalid_parameter", "message": problem}}, status=400)
