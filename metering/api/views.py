from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from accounts.api.pagination import TextCursorPagination
from accounts.api.permissions import AccessPermission, read, write
from accounts.api.principal import principal_get
from metering.api.serializers import MeterSerializer, MeterUpdateSerializer
from metering.models import Meter
from metering.services.meter import meter_create, meter_delete, meter_update


class MeterPagination(TextCursorPagination):
    ordering = "code"


@extend_schema_view(
    list=extend_schema(summary="List meters, by code", tags=["meters"]),
    create=extend_schema(summary="Create a meter (backfills from events already stored)", tags=["meters"]),
    retrieve=extend_schema(summary="Get a meter by code", tags=["meters"]),
    partial_update=extend_schema(summary="Change a meter (rollups are rebuilt)", tags=["meters"]),
    update=extend_schema(summary="Replace a meter's definition", tags=["meters"]),
    destroy=extend_schema(summary="Delete a meter no plan uses", tags=["meters"]),
)
class MeterViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    # The seller's configuration: staff and machine credentials only, never customer members.
    permission_classes = [AccessPermission]
    access = {
        "GET": read("metering.view_meter"),
        "POST": write("metering.add_meter"),
        "PUT": write("metering.change_meter"),
        "PATCH": write("metering.change_meter"),
        "DELETE": write("metering.delete_meter"),
    }
    lookup_field = "code"
    lookup_value_regex = r"[a-z0-9_.-]{1,100}"
    queryset = Meter.objects.all()
    pagination_class = MeterPagination

    def get_serializer_class(self):
        return MeterUpdateSerializer if self.action in {"update", "partial_update"} else MeterSerializer

    def perform_create(self, serializer):
        serializer.instance = meter_create(actor=principal_get(self.request).user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = meter_update(
            actor=principal_get(self.request).user, meter=serializer.instance, **serializer.validated_data
        )

    def destroy(self, request, *args, **kwargs):
        meter_delete(actor=principal_get(request).user, meter=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
