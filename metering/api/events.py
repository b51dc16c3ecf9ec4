"""POST /api/v1/events through Django: every credential type (API keys, OAuth2 tokens, JWTs).
Requests with an API key normally take the ASGI fast lane (metering.api.lane), which runs the
same service without Django's middleware chain. No DRF serializer here: decoding and validating
1,000 events through one costs ~100x what msgspec does (ARCHITECTURE.md)."""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError, connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.api.authentication import CredentialError, principal_from_bearer
from metering.ingest import MAX_BODY_BYTES
from metering.metrics import EVENTS_REJECTED
from metering.services.ingest import IngestOutcome, error, events_ingest, unavailable

logger = logging.getLogger(__name__)


def _response(outcome: IngestOutcome) -> JsonResponse:
    response = JsonResponse(outcome.body, status=outcome.status)
    for name, value in outcome.headers.items():
        response[name] = value
    return response


@csrf_exempt
def events_ingest_view(request):
    if request.method != "POST":
        return _response(error(405, "method_not_allowed", "Use POST.", headers={"Allow": "POST"}))
    try:
        principal = principal_from_bearer(request)
    except CredentialError as exc:
        return _response(error(401, exc.code, exc.message))
    except (OperationalError, InterfaceError):
        logger.warning("database unavailable", exc_info=True)
        return _response(unavailable())
    if principal is None:
        return _response(error(401, "not_authenticated", "Send Authorization: Bearer <API key or OAuth2 token>."))
    try:
        # Django refuses to read a body over DATA_UPLOAD_MAX_MEMORY_SIZE (set to MAX_BODY_BYTES).
        body = request.body
    except RequestDataTooBig:
        EVENTS_REJECTED.labels(code="payload_too_large").inc()
        return _response(error(413, "payload_too_large", f"The body exceeds {MAX_BODY_BYTES} bytes."))
    return _response(
        events_ingest(tenant=connection.tenant, principal=principal, body=body, content_type=request.content_type or "")
    )
