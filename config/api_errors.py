"""One error shape for the whole API: `{"error": {"code", "message", "fields"?}}` with a stable,
machine-readable code and a message a developer can act on."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tenants.errors import DomainError

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
    if isinstance(exc, DomainError):
        return Response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status_code)
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
