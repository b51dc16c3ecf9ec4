"""POST /api/v1/events as the OpenAPI schema describes it. The endpoint itself is a plain view
on the hot path (metering.api.events, and the ASGI lane), decoding with msgspec
(metering.ingest): these serializers and the view below are never run, they only describe that
contract. config.api_schema adds the view to the schema at the events path."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from accounts.api.authentication import BearerAuthentication
from accounts.api.schema import errors
from metering.ingest import (
    CONTENT_CLOUDEVENT,
    CONTENT_CLOUDEVENT_BATCH,
    CONTENT_JSON,
    MAX_BODY_BYTES,
    MAX_EVENTS,
    MAX_ID_LENGTH,
)


class EventIn(serializers.Serializer):
    id = serializers.CharField(max_length=MAX_ID_LENGTH, help_text="the idempotency key: sent twice, counted once")
    customer = serializers.CharField(max_length=MAX_ID_LENGTH, help_text="the organization's external_id")
    type = serializers.CharField(max_length=MAX_ID_LENGTH, help_text="what meters match on (event_type)")
    timestamp = serializers.DateTimeField(
        required=False, help_text="RFC 3339 with an offset; default: the time of receipt"
    )
    properties = serializers.DictField(required=False, help_text="a JSON object (at most 16 KB)")


class EventBatchIn(serializers.Serializer):
    events = EventIn(many=True, max_length=MAX_EVENTS)


class CloudEventIn(serializers.Serializer):
    specversion = serializers.ChoiceField(choices=["1.0"])
    id = serializers.CharField(max_length=MAX_ID_LENGTH)
    source = serializers.CharField()
    type = serializers.CharField(max_length=MAX_ID_LENGTH)
    subject = serializers.CharField(max_length=MAX_ID_LENGTH, help_text="the customer (organization external_id)")
    time = serializers.DateTimeField(required=False)
    data = serializers.DictField(required=False, help_text="the event's properties")


class EventRejectionOut(serializers.Serializer):
    index = serializers.IntegerField(help_text="the event's position in the request")
    id = serializers.CharField(allow_null=True)
    code = serializers.CharField(
        help_text="`invalid_id`, `invalid_timestamp`, `invalid_properties`, `invalid_value`, …"
    )
    message = serializers.CharField()


class EventsAcceptedOut(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="events stored (duplicates of stored ids are skipped later)")
    rejected = EventRejectionOut(many=True)


class NoValidEventsDetail(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    rejected = EventRejectionOut(many=True)


class NoValidEventsOut(serializers.Serializer):
    error = NoValidEventsDetail()


_EVENTS_JSON = PolymorphicProxySerializer(
    component_name="EventsIn",
    serializers=[EventBatchIn, EventIn],
    resource_type_field_name=None,
)


class EventsIngestSchemaView(APIView):
    authentication_classes = [BearerAuthentication]

    @extend_schema(
        summary="Send usage events (one, a batch, or CloudEvents); 202 with per-event rejections",
        description=f"Needs the `ingest` scope. At most {MAX_EVENTS} events and {MAX_BODY_BYTES} bytes a "
        "request. Good events are accepted even when others in the batch are rejected.",
        tags=["events"],
        operation_id="events_ingest",
        request={
            CONTENT_JSON: _EVENTS_JSON,
            CONTENT_CLOUDEVENT: CloudEventIn,
            CONTENT_CLOUDEVENT_BATCH: CloudEventIn(many=True),
        },
        responses={
            202: EventsAcceptedOut,
            **errors(
                {
                    400: "`malformed_json`, `empty_body`, `invalid_body`, `empty_batch`",
                    413: "`payload_too_large`, `too_many_events`",
                    429: "`rate_limited` (see Retry-After)",
                    503: "`storage_unavailable`: nothing was stored; retry (see Retry-After)",
                }
            ),
            422: NoValidEventsOut,
        },
        examples=[
            OpenApiExample(
                "a batch",
                value={"events": [{"id": "evt-1", "customer": "acme", "type": "api_call", "properties": {"gb": 0.5}}]},
                request_only=True,
            )
        ],
    )
    def post(self, request):  # pragma: no cover - never routed
        raise NotImplementedError
