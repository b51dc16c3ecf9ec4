"""The inbound gateway webhook endpoints of a tenant (its own host, its own secret or webhook id)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments.gateways.base import WebhookRejected
from payments.services.inbound import paypal_webhook_receive, stripe_webhook_receive


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    headers = {key.lower(): value for key, value in request.headers.items()}
    try:
        outcome = stripe_webhook_receive(body=request.body, headers=headers)
    except WebhookRejected:
        return JsonResponse(
            {"error": {"code": "webhook_rejected", "message": "The webhook's signature does not verify."}},
            status=400,
        )
    return JsonResponse({"received": True, "outcome": outcome})


@csrf_exempt
@require_POST
def paypal_webhook(request: HttpRequest) -> JsonResponse:
    headers = {key.lower(): value for key, value in request.headers.items()}
    try:
        outcome = paypal_webhook_receive(body=request.body, headers=headers)
    except WebhookRejected as error:
        if getattr(error, "retryable", False):
            # PayPal's certificate could not be fetched: a 5xx makes PayPal deliver it again.
            return JsonResponse(
                {"error": {"code": "webhook_unverifiable", "message": "The signing certificate is unavailable."}},
                status=503,
            )
        return JsonResponse(
            {"error": {"code": "webhook_rejected", "message": "The webhook's signature does not verify."}},
            status=400,
        )
    return JsonResponse({"received": True, "outcome": outcome})
