from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from accounts.api.pagination import StrictCursorPagination
from accounts.api.permissions import AccessPermission, read, write
from accounts.api.principal import principal_get
from billing.api.serializers import OrganizationSerializer, OrganizationUpdateSerializer
from billing.selectors.organization import organization_list
from billing.services.organization import organization_close, organization_create, organization_update


class OrganizationPagination(StrictCursorPagination):
    ordering = "id"


@extend_schema_view(
    list=extend_schema(summary="List organizations", tags=["organizations"]),
    create=extend_schema(summary="Create an organization", tags=["organizations"]),
    retrieve=extend_schema(summary="Get an organization by external_id", tags=["organizations"]),
    partial_update=extend_schema(summary="Update an organization", tags=["organizations"]),
    update=extend_schema(summary="Replace an organization's editable fields", tags=["organizations"]),
    destroy=extend_schema(
        summary="Close an organization (kept for its history)",
        tags=["organizations"],
        responses={200: OrganizationSerializer},
    ),
)
class OrganizationViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Customer organizations, addressed by the seller's own `external_id`."""

    permission_classes = [AccessPermission]
    access = {
        "GET": read("billing.view_organization", members=True),
        "POST": write("billing.add_organization"),
        "PUT": write("billing.change_organization"),
        "PATCH": write("billing.change_organization"),
        "DELETE": write("billing.delete_organization"),  # closes it
    }
    lookup_field = "external_id"
    lookup_value_regex = r"[A-Za-z0-9._:@-]{1,255}"
    pagination_class = OrganizationPagination

    def get_queryset(self):
        return organization_list(principal=principal_get(self.request))

    def get_serializer_class(self):
        return OrganizationUpdateSerializer if self.action in {"update", "partial_update"} else OrganizationSerializer

    def perform_create(self, serializer):
        serializer.instance = organization_create(actor=principal_get(self.request).user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = organization_update(
            actor=principal_get(self.request).user, organization=serializer.instance, **serializer.validated_data
        )

    def destroy(self, request, *args, **kwargs):
        organization = organization_close(actor=principal_get(request).user, organization=self.get_object())
        return Response(OrganizationSerializer(organization).data, status=status.HTTP_200_OK)
