"""Plans API: /api/v1/plans[/<code>[/versions]]. Prices are the JSON documents of billing.pricing."""

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.pagination import StrictCursorPagination, TextCursorPagination, page_response
from accounts.api.permissions import AccessPermission, read, write
from accounts.api.principal import principal_get
from billing.api.formats import decimal_text
from billing.api.responses import DecimalText, PlanOut, PlanVersionOut
from billing.models import BaseFeeTiming, Plan, PlanInterval, PlanUsageLimit, PlanVersion
from billing.selectors.plan import plan_list
from billing.services.limit import plan_limits_set
from billing.services.plan import ChargeInput, VersionInput, plan_create, plan_update, plan_version_create


class ChargeSerializer(serializers.Serializer):
    meter = serializers.CharField(max_length=100)
    price = serializers.JSONField()
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    group_property = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    group_prices = serializers.DictField(child=serializers.JSONField(), required=False, default=dict)


class VersionInSerializer(serializers.Serializer):
    base_fee = serializers.CharField(required=False, default="0")
    base_fee_timing = serializers.ChoiceField(choices=BaseFeeTiming.choices, required=False, default="advance")
    trial_days = serializers.IntegerField(min_value=0, max_value=730, required=False, default=0)
    minimum_commitment = serializers.CharField(required=False, allow_null=True, default=None)
    charges = ChargeSerializer(many=True, required=False, default=list)

    def to_input(self) -> VersionInput:
        data = self.validated_data
        return VersionInput(
            base_fee=data["base_fee"],
            base_fee_timing=data["base_fee_timing"],
            trial_days=data["trial_days"],
            minimum_commitment=data["minimum_commitment"],
            charges=[ChargeInput(**charge) for charge in data["charges"]],
        )


class NewVersionInSerializer(VersionInSerializer):
    """A new version replaces the prices subscriptions move to, so it states them: an empty body
    must not make a free version. `base_fee` and `charges` (possibly []) are required; the rest
    default as for a new plan, not copied from the previous version."""

    base_fee = serializers.CharField()
    charges = ChargeSerializer(many=True, allow_empty=True)


class PlanInSerializer(VersionInSerializer):
    code = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
    currency = serializers.CharField(max_length=3)
    interval = serializers.ChoiceField(choices=PlanInterval.choices, default="month")
    description = serializers.CharField(required=False, default="", allow_blank=True)


class PlanPatchSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


def version_out(version: PlanVersion) -> dict:
    return {
        "version": version.version,
        "base_fee": decimal_text(version.base_fee),
        "base_fee_timing": version.base_fee_timing,
        "trial_days": version.trial_days,
        "minimum_commitment": decimal_text(version.minimum_commitment),
        "created_at": version.created_at.isoformat(),
        "charges": [
            {
                "meter": c.meter.code,
                "name": c.name or c.meter.name,
                "price": c.price,
                "group_property": c.group_property,
                "group_prices": c.group_prices,
            }
            for c in version.charges.select_related("meter")
        ],
    }


def plan_out(plan: Plan, *, version: PlanVersion | None = None) -> dict:
    version = version or plan.versions.order_by("-version").first()
    return {
        "code": plan.code,
        "name": plan.name,
        "description": plan.description,
        "currency": plan.currency,
        "interval": plan.interval,
        "is_active": plan.is_active,
        "current_version": version_out(version) if version else None,
    }


class _PlanPagination(TextCursorPagination):
    ordering = "code"


class _VersionPagination(StrictCursorPagination):
    ordering = "version"


class PlansView(APIView):
    permission_classes = [AccessPermission]
    access = {"GET": read("billing.view_plan", members=True), "POST": write("billing.add_plan")}
    pagination_class = _PlanPagination

    @extend_schema(
        summary="List plans with their current version, by code",
        tags=["plans"],
        responses=PlanOut(many=True),
        operation_id="plans_list",
    )
    def get(self, request):
        plans = plan_list(principal=principal_get(request)).prefetch_related("versions")
        return page_response(self, request, plans, plan_out)

    @extend_schema(
        summary="Create a plan (its version 1)",
        tags=["plans"],
        request=PlanInSerializer,
        responses={201: PlanOut},
    )
    def post(self, request):
        serializer = PlanInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        plan = plan_create(
            actor=principal_get(request).user,
            code=data["code"],
            name=data["name"],
            currency=data["currency"],
            interval=data["interval"],
            description=data["description"],
            version=serializer.to_input(),
        )
        return Response(plan_out(plan), status=status.HTTP_201_CREATED)


class PlanView(APIView):
    permission_classes = [AccessPermission]
    access = {"GET": read("billing.view_plan", members=True), "PATCH": write("billing.change_plan")}

    @extend_schema(summary="Get a plan", tags=["plans"], responses=PlanOut, operation_id="plans_get")
    def get(self, request, code: str):
        return Response(plan_out(get_object_or_404(plan_list(principal=principal_get(request)), code=code)))

    @extend_schema(
        summary="Rename, describe, (de)activate a plan", tags=["plans"], request=PlanPatchSerializer, responses=PlanOut
    )
    def patch(self, request, code: str):
        serializer = PlanPatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        plan = plan_update(
            actor=principal_get(request).user, plan=get_object_or_404(Plan, code=code), **serializer.validated_data
        )
        return Response(plan_out(plan))


class PlanVersionsView(APIView):
    permission_classes = [AccessPermission]
    access = {"GET": read("billing.view_planversion", members=True), "POST": write("billing.add_planversion")}
    pagination_class = _VersionPagination

    @extend_schema(
        summary="List a plan's versions, oldest first",
        tags=["plans"],
        responses=PlanVersionOut(many=True),
        operation_id="plan_versions_list",
    )
    def get(self, request, code: str):
        plan = get_object_or_404(plan_list(principal=principal_get(request)), code=code)
        return page_response(self, request, plan.versions.all(), version_out)

    @extend_schema(
        summary="Change a plan's prices: make its next version",
        tags=["plans"],
        request=NewVersionInSerializer,
        responses={201: PlanOut},
    )
    def post(self, request, code: str):
        plan = get_object_or_404(Plan, code=code)
        serializer = NewVersionInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = plan_version_create(actor=principal_get(request).user, plan=plan, version=serializer.to_input())
        return Response(plan_out(plan, version=version), status=status.HTTP_201_CREATED)


class LimitInSerializer(serializers.Serializer):
    meter = serializers.CharField(max_length=100)
    limit = serializers.DecimalField(max_digits=18, decimal_places=6, min_value=Decimal(0))


class LimitsInSerializer(serializers.Serializer):
    limits = LimitInSerializer(many=True, allow_empty=True)


class LimitOut(serializers.Serializer):
    meter = serializers.CharField()
    limit = DecimalText()


class LimitsOut(serializers.Serializer):
    plan = serializers.CharField()
    limits = LimitOut(many=True)


def limits_out(plan: Plan) -> dict:
    rows = PlanUsageLimit.objects.filter(plan=plan).select_related("meter").order_by("meter__code")
    return {"plan": plan.code, "limits": [{"meter": r.meter.code, "limit": decimal_text(r.limit)} for r in rows]}


class PlanLimitsView(APIView):
    """A plan's usage limits per billing period (hard: the organization's entitlement blocks the
    meter once reached; docs/portal.md, flow 7)."""

    permission_classes = [AccessPermission]
    access = {"GET": read("billing.view_plan", members=True), "PUT": write("billing.change_plan")}

    @extend_schema(summary="A plan's usage limits", tags=["plans"], responses=LimitsOut)
    def get(self, request, code: str):
        return Response(limits_out(get_object_or_404(plan_list(principal=principal_get(request)), code=code)))

    @extend_schema(
        summary="Replace a plan's usage limits", tags=["plans"], request=LimitsInSerializer, responses=LimitsOut
    )
    def put(self, request, code: str):
        plan = get_object_or_404(Plan, code=code)
        serializer = LimitsInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        plan_limits_set(
            actor=principal_get(request).user,
            plan=plan,
            limits=[(row["meter"], row["limit"]) for row in serializer.validated_data["limits"]],
        )
        return Response(limits_out(plan))
