"""Entitlement API: GET /api/v1/organizations/<external_id>/entitlement tells the seller's product
whether to serve the organization and why. Answered from the cache (dunning.selectors), which
every transition invalidates: the hot path is the organization's visibility check and one cache
read."""

from __future__ import annotations

import itertools

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import AccessPermission, read, write
from accounts.api.principal import principal_get
from accounts.api.schema import errors
from billing.api.lookups import organization_visible
from dunning.models import DunningStatus, FinalAction
from dunning.policy import PLAN_CHANGES, USAGE
from dunning.selectors import entitlement_get
from dunning.services.policy import FIELDS, dunning_policy_get, dunning_policy_set


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


def _days(*, low: int, help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=low, max_value=365), max_length=20, help_text=help_text
    )


class PolicySerializer(serializers.Serializer):
    """The tenant's dunning policy (docs/dunning.md). PUT replaces it whole; days count from the
    invoice's first failed charge (or, for manual collection, its due date)."""

    retry_days = _days(low=1, help_text="Days after the first failure to charge again, increasing (1-365).")
    retry_hard_declines = serializers.BooleanField(help_text="Retry after a hard decline too.")
    retry_on_method_change = serializers.BooleanField(help_text="Charge a new or updated default method at once.")
    plan_changes_blocked_day = serializers.IntegerField(min_value=0, max_value=365)
    suspend_day = serializers.IntegerField(min_value=0, max_value=365, help_text="Usage suspended from this day.")
    final_day = serializers.IntegerField(min_value=0, max_value=365)
    final_action = serializers.ChoiceField(choices=FinalAction.choices)
    email_days = _days(low=0, help_text="Days after the first failure to email the customer, increasing (0-365).")
    pre_due_reminder_days = serializers.IntegerField(
        min_value=1, max_value=365, allow_null=True, help_text="Remind manual payers N days before due; null: none."
    )

    def _increasing(self, value: list[int]) -> list[int]:
        if any(a >= b for a, b in itertools.pairwise(value)):
            raise serializers.ValidationError("Days must be strictly increasing.", code="not_increasing")
        return value

    validate_retry_days = _increasing
    validate_email_days = _increasing

    def validate(self, attrs: dict) -> dict:
        if not attrs["plan_changes_blocked_day"] <= attrs["suspend_day"] <= attrs["final_day"]:
            raise serializers.ValidationError(
                {"suspend_day": ["plan_changes_blocked_day <= suspend_day <= final_day is required."]},
                code="days_out_of_order",
            )
        return attrs


class DunningPolicyView(APIView):
    permission_classes = [AccessPermission]
    access = {"GET": read("dunning.view_dunningpolicy"), "PUT": write("dunning.change_dunningpolicy")}

    @extend_schema(summary="The tenant's dunning policy", tags=["dunning"], responses=PolicySerializer)
    def get(self, request):
        row = dunning_policy_get()
        return Response({name: getattr(row, name) for name in FIELDS})

    @extend_schema(
        summary="Replace the tenant's dunning policy",
        tags=["dunning"],
        request=PolicySerializer,
        responses={200: PolicySerializer, **errors({400: "`validation_error`: out of range or out of order"})},
    )
    def put(self, request):
        serializer = PolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = dunning_policy_set(actor=principal_get(request).user, values=serializer.validated_data)
        return Response({name: getattr(row, name) for name in FIELDS})


urlpatterns = [
    path("organizations/<str:external_id>/entitlement", EntitlementView.as_view(), name="organization-entitlement"),
    path("dunning/policy", DunningPolicyView.as_view(), name="dunning-policy"),
]
