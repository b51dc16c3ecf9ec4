"""Webhook endpoints API (integration credentials, hence in accounts):

- `GET|POST /api/v1/webhook-endpoints`: list (cursor pages, `limit` 1-100) / create. The signing
  secret (`whsec_…`) is in the creation answer only; it is stored encrypted and never shown again.
- `GET|PATCH|DELETE /api/v1/webhook-endpoints/<id>`: `url`, `description`, `event_types` (empty =
  every event), `enabled` (enabling clears `disabled_reason`).
- `POST /api/v1/webhook-endpoints/<id>/rotate-secret` `{"overlap_hours"?: 0-168}`: a new secret,
  shown once; the old one keeps signing (both signatures sent) until `previous_secret_expires_at`.
- `GET /api/v1/webhook-endpoints/<id>/deliveries`: the attempt log, newest first (cursor pages).
- `POST /api/v1/webhook-endpoints/<id>/deliveries/<delivery id>/replay`: send that message again
  (same `webhook-id`); 202, or 409 `replay_not_possible`.

Scopes: read for GET, write otherwise; people need the staff permission
`core.change_webhookendpoint` (owner and admin roles) for every method; customer members never."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.pagination import StrictCursorPagination, page_response
from accounts.api.permissions import AccessPermission, read, write
from accounts.api.schema import errors
from core.errors import DomainError
from core.models import WebhookDelivery, WebhookEndpoint
from core.selectors.webhook import webhook_delivery_list, webhook_endpoint_get, webhook_endpoint_list
from core.services.webhook_endpoint import (
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)
from core.services.webhook_http import TargetRefused
from core.webhook_events import EVENT_TYPES

# Endpoints carry the tenant's integration (URLs, delivery logs with response excerpts): reading
# them too needs the change permission, so only owners and admins (accounts.backends) see them.
STAFF_PERMISSION = "core.change_webhookendpoint"
ACCESS = {
    "GET": read(STAFF_PERMISSION),
    "POST": write(STAFF_PERMISSION),
    "PATCH": write(STAFF_PERMISSION),
    "DELETE": write(STAFF_PERMISSION),
}
TAGS = ["webhooks"]


class _Pagination(StrictCursorPagination):
    page_size = 50
    max_page_size = 100


class EndpointOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    disabled_at = serializers.DateTimeField(allow_null=True)
    failing_since = serializers.DateTimeField(allow_null=True)
    previous_secret_expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class EndpointWithSecretOut(EndpointOut):
    secret = serializers.CharField(help_text="Shown only in this answer.")


class DeliveryOut(serializers.Serializer):
    id = serializers.IntegerField()
    webhook_id = serializers.CharField(help_text="The `webhook-id` header sent (msg_<outbox id>).")
    event_type = serializers.CharField()
    attempt = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField(allow_null=True)
    response_excerpt = serializers.CharField(help_text="At most 1 KB of the answer.")
    error = serializers.CharField()
    succeeded = serializers.BooleanField()
    attempted_at = serializers.DateTimeField()


class ReplayOut(serializers.Serializer):
    replayed = serializers.CharField(help_text="the `webhook-id` of the message sent again (msg_<outbox id>)")


class EndpointIn(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    description = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), required=False, default=list, max_length=len(EVENT_TYPES)
    )


class EndpointPatch(serializers.Serializer):
    url = serializers.URLField(max_length=2000, required=False)
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), required=False, max_length=len(EVENT_TYPES)
    )
    enabled = serializers.BooleanField(required=False)


class RotateIn(serializers.Serializer):
    overlap_hours = serializers.IntegerField(required=False, min_value=0, max_value=168)


def endpoint_out(endpoint: WebhookEndpoint) -> dict:
    return EndpointOut(endpoint).data


def delivery_out(delivery: WebhookDelivery) -> dict:
    return DeliveryOut(
        {
            "id": delivery.pk,
            "webhook_id": f"msg_{delivery.message_id}",
            "event_type": delivery.event_type,
            "attempt": delivery.attempt,
            "status_code": delivery.status_code,
            "latency_ms": delivery.latency_ms,
            "response_excerpt": delivery.response_excerpt,
            "error": delivery.error,
            "succeeded": delivery.succeeded,
            "attempted_at": delivery.attempted_at,
        }
    ).data


def _input(serializer_class, request):
    data = request.data if isinstance(request.data, dict) else None
    if data is None:
        raise DomainError("The body must be a JSON object.", code="malformed_request")
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _endpoint(pk: str) -> WebhookEndpoint:
    endpoint = webhook_endpoint_get(endpoint_id=int(pk)) if pk.isascii() and pk.isdigit() and len(pk) < 19 else None
    if endpoint is None:
        raise DomainError(f"No webhook endpoint {pk[:40]!r}.", code="not_found", status_code=404)
    return endpoint


def _refused(exc: TargetRefused) -> DomainError:
    return DomainError(f"The URL cannot receive webhooks: {exc}", code=TargetRefused.code)


_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


class _View(APIView):
    permission_classes = [AccessPermission]
    access = ACCESS


class WebhookEndpointsView(_View):
    pagination_class = _Pagination

    @extend_schema(
        summary="List webhook endpoints, newest first",
        tags=TAGS,
        responses=EndpointOut(many=True),
        operation_id="webhook_endpoints_list",
    )
    def get(self, request):
        return page_response(self, request, webhook_endpoint_list(), endpoint_out)

    @extend_schema(
        summary="Create a webhook endpoint (the secret is in this answer only)",
        operation_id="webhook_endpoints_create",
        tags=TAGS,
        request=EndpointIn,
        responses={201: EndpointWithSecretOut},
    )
    def post(self, request):
        data = _input(EndpointIn, request)
        try:
            created = webhook_endpoint_create(
                url=data["url"], description=data["description"], event_types=data["event_types"]
            )
        except TargetRefused as exc:
            raise _refused(exc) from None
        return Response({**endpoint_out(created.endpoint), "secret": created.secret}, status=status.HTTP_201_CREATED)


class WebhookEndpointView(_View):
    @extend_schema(
        summary="Get a webhook endpoint",
        tags=TAGS,
        parameters=[_ID],
        responses=EndpointOut,
        operation_id="webhook_endpoints_get",
    )
    def get(self, request, pk: str):
        return Response(endpoint_out(_endpoint(pk)))

    @extend_schema(
        summary="Change a webhook endpoint",
        tags=TAGS,
        parameters=[_ID],
        request=EndpointPatch,
        responses=EndpointOut,
        operation_id="webhook_endpoints_update",
    )
    def patch(self, request, pk: str):
        endpoint = _endpoint(pk)
        data = _input(EndpointPatch, request)
        try:
            endpoint = webhook_endpoint_update(endpoint=endpoint, **data)
        except TargetRefused as exc:
            raise _refused(exc) from None
        return Response(endpoint_out(endpoint))

    @extend_schema(
        summary="Delete a webhook endpoint",
        tags=TAGS,
        parameters=[_ID],
        responses={204: None},
        operation_id="webhook_endpoints_delete",
    )
    def delete(self, request, pk: str):
        webhook_endpoint_delete(endpoint=_endpoint(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateView(_View):
    @extend_schema(
        summary="Rotate the signing secret (the old one keeps signing for the overlap)",
        operation_id="webhook_endpoints_rotate_secret",
        tags=TAGS,
        parameters=[_ID],
        request=RotateIn,
        responses=EndpointWithSecretOut,
    )
    def post(self, request, pk: str):
        endpoint = _endpoint(pk)
        data = _input(RotateIn, request) if request.body else {}
        hours = data.get("overlap_hours")
        rotated = webhook_endpoint_rotate_secret(
            endpoint=endpoint, overlap=timedelta(hours=hours) if hours is not None else None
        )
        return Response({**endpoint_out(rotated.endpoint), "secret": rotated.secret})


class WebhookDeliveriesView(_View):
    pagination_class = _Pagination

    @extend_schema(
        summary="An endpoint's delivery attempts, newest first",
        operation_id="webhook_deliveries_list",
        tags=TAGS,
        parameters=[_ID],
        responses=DeliveryOut(many=True),
    )
    def get(self, request, pk: str):
        return page_response(self, request, webhook_delivery_list(endpoint=_endpoint(pk)), delivery_out)


class WebhookDeliveryReplayView(_View):
    @extend_schema(
        summary="Send a delivery's message again (same webhook-id)",
        operation_id="webhook_deliveries_replay",
        tags=TAGS,
        parameters=[_ID, OpenApiParameter("delivery", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=None,
        responses={
            202: ReplayOut,
            **errors({409: "`replay_not_possible`: waiting or being sent already, or no longer kept"}),
        },
    )
    def post(self, request, pk: str, delivery: str):
        endpoint = _endpoint(pk)
        found = (
            webhook_delivery_list(endpoint=endpoint).filter(pk=int(delivery)).first()
            if delivery.isascii() and delivery.isdigit() and len(delivery) < 19
            else None
        )
        if found is None:
            raise DomainError(f"No delivery {delivery[:40]!r} of this endpoint.", code="not_found", status_code=404)
        if not webhook_delivery_replay(delivery=found):
            raise DomainError(
                "This message is waiting or being sent already, or is older than the outbox keeps messages.",
                code="replay_not_possible",
                status_code=409,
            )
        return Response(ReplayOut({"replayed": f"msg_{found.message_id}"}).data, status=status.HTTP_202_ACCEPTED)
