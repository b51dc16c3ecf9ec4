"""The inbound Stripe webhook endpoint of a tenant (its own host, its own signing secret)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments.gateways.base import WebhookRejected
from payments.services.inbound import stripe_webhook_receive


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
