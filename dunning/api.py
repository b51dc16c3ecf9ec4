"""Entitlement API: GET /api/v1/organizations/<external_id>/entitlement tells the seller's product
whether to serve the organization and why. Answered from the cache (dunning.selectors), which
every transition invalidates: the hot path is the organization's visibility check and one cache
read."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import AccessPermission, read
from accounts.api.schema import errors
from billing.api.lookups import organization_visible
from dunning.models import DunningStatus
from dunning.policy import PLAN_CHANGES, USAGE
from dunning.selectors import entitlement_get


class BlockedMeterOut(serializers.Serializer):
    meter = serializers.CharField(help_text="The meter's code.")
    limit = serializers.CharField(help_text="The usage limit reached this period (a decimal as a string).")
    source = serializers.ChoiceField(choices=["plan", "cap"], help_text="The plan's limit or the customer's cap.")
    until = serializers.DateTimeField(help_text="When the period ends and the meter unblocks.")


class EntitlementOut(serializers.Serializer):
    customer = serializers.CharField(help_text="The organization's external_id.")
    status = serializers.ChoiceField(choices=DunningStatus.choices)
    serve = serializers.BooleanField(help_text="Whether the seller's product should serve the customer.")
    blocked_features = serializers.ListField(
        child=serializers.ChoiceField(choices=[PLAN_CHANGES, USAGE]),
        help_text="`plan_changes` from the restriction day, `usage` too once suspended.",
    )
    blocked_meters = BlockedMeterOut(
        many=True, help_text="Meters whose hard usage limit this period's usage reached: stop serving them."
    )
    since = serializers.DateTimeField(allow_null=True, help_text="When the current status began; null when active.")
    reason = serializers.CharField(allow_blank=True)


class EntitlementView(APIView):
    permission_classes = [AccessPermission]
    access = {"GET": read("billing.view_organization", members=True)}

    @extend_schema(
        summary="Whether to serve an organization, and why (its dunning state)",
        tags=["organizations"],
        responses={200: EntitlementOut, **errors({404: "`not_found`: no such organization the caller may see"})},
    )
    def get(self, request, external_id: str):
        organization = organization_visible(request, external_id)
        return Response({"customer": organization.external_id, **entitlement_get(organization_id=organization.pk)})


urlpatterns = [
    path("organizations/<str:external_id>/entitlement", EntitlementView.as_view(), name="organization-entitlement"),
]
