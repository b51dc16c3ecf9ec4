"""Coupons API: /api/v1/coupons[/<code>] and an organization's redemptions at
/api/v1/organizations/<external_id>/coupons[/<code>]."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.pagination import StrictCursorPagination, TextCursorPagination, page_response
from accounts.api.permissions import AccessPermission, read, write
from accounts.api.principal import principal_get
from accounts.api.schema import errors
from billing.api.formats import decimal_text, instant_parse, instant_text
from billing.api.lookups import INTEGER_COLUMN_MAX, organization_visible
from billing.api.responses import CouponOut, RedemptionOut
from billing.models import Coupon, CouponDuration, CouponRedemption, CouponTarget, DiscountType
from billing.services.coupon import (
    MAX_DURATION_PERIODS,
    coupon_create,
    coupon_redeem,
    coupon_redemption_remove,
    coupon_update,
)
from core.errors import DomainError


class CouponInSerializer(serializers.Serializer):
    code = serializers.RegexField(r"^[A-Za-z0-9_.-]+$", max_length=100)
    name = serializers.CharField(max_length=200)
    discount_type = serializers.ChoiceField(choices=DiscountType.choices)
    percent_off = serializers.CharField(required=False, allow_null=True, default=None, max_length=32)
    amount_off = serializers.CharField(required=False, allow_null=True, default=None, max_length=32)
    currency = serializers.CharField(required=False, default="", allow_blank=True, max_length=3)
    duration = serializers.ChoiceField(choices=CouponDuration.choices)
    duration_periods = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=MAX_DURATION_PERIODS
    )
    applies_to = serializers.ChoiceField(choices=CouponTarget.choices, default=CouponTarget.INVOICE)
    meter_codes = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)
    max_redemptions = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=INTEGER_COLUMN_MAX
    )
    redeem_by = serializers.CharField(required=False, allow_null=True, default=None, max_length=64)


class CouponPatchSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    is_active = serializers.BooleanField(required=False)
    max_redemptions = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=INTEGER_COLUMN_MAX
    )
    redeem_by = serializers.CharField(required=False, allow_null=True, max_length=64)


class RedeemSerializer(serializers.Serializer):
    coupon = serializers.CharField(max_length=100)


def coupon_out(c: Coupon) -> dict:
    return {
        "code": c.code,
        "name": c.name,
        "discount_type": c.discount_type,
        "percent_off": decimal_text(c.percent_off),
        "amount_off": decimal_text(c.amount_off),
        "currency": c.currency or None,
        "duration": c.duration,
        "duration_periods": c.duration_periods,
        "applies_to": c.applies_to,
        "meter_codes": c.meter_codes,
        "max_redemptions": c.max_redemptions,
        "redeem_by": instant_text(c.redeem_by),
        "is_active": c.is_active,
        "times_redeemed": c.redemptions.count(),
    }


def redemption_out(r: CouponRedemption) -> dict:
    return {
        "coupon": r.coupon.code,
        "subscription": r.subscription_id,
        "redeemed_at": instant_text(r.redeemed_at),
        "covers_from": instant_text(r.covers_from),
        "covers_until": instant_text(r.covers_until),
        "removed_at": instant_text(r.removed_at),
    }


class _CouponPagination(TextCursorPagination):
    ordering = "code"


class _RedemptionPagination(StrictCursorPagination):
    ordering = "id"  # the order of redemption


class CouponsView(APIView):
    # The coupon catalogue (every code) is the seller's: not for customer members.
    permission_classes = [AccessPermission]
    access = {"GET": read("billing.view_coupon"), "POST": write("billing.add_coupon")}
    pagination_class = _CouponPagination

    @extend_schema(
        summary="List coupons, by code", tags=["coupons"], responses=CouponOut(many=True), operation_id="coupons_list"
    )
    def get(self, request):
        return page_response(self, request, Coupon.objects.all(), coupon_out)

    @extend_schema(summary="Create a coupon", tags=["coupons"], request=CouponInSerializer, responses={201: CouponOut})
    def post(self, request):
        serializer = CouponInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["redeem_by"] = instant_parse(data["redeem_by"], field="redeem_by")
        coupon = coupon_create(actor=principal_get(request).user, **data)
        return Response(coupon_out(coupon), status=status.HTTP_201_CREATED)


class CouponView(APIView):
    permission_classes = [AccessPermission]
    access = {"GET": read("billing.view_coupon"), "PATCH": write("billing.change_coupon")}

    @extend_schema(summary="Get a coupon", tags=["coupons"], responses=CouponOut, operation_id="coupons_get")
    def get(self, request, code: str):
        return Response(coupon_out(get_object_or_404(Coupon, code=code)))

    @extend_schema(
        summary="Rename, deactivate or change a coupon's limits",
        tags=["coupons"],
        request=CouponPatchSerializer,
        responses=CouponOut,
    )
    def patch(self, request, code: str):
        coupon = get_object_or_404(Coupon, code=code)
        serializer = CouponPatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        if "redeem_by" in changes:
            changes["redeem_by"] = instant_parse(changes["redeem_by"], field="redeem_by")
        return Response(coupon_out(coupon_update(actor=principal_get(request).user, coupon=coupon, **changes)))


class RedemptionsView(APIView):
    permission_classes = [AccessPermission]
    access = {
        "GET": read("billing.view_couponredemption", members=True),
        "POST": write("billing.add_couponredemption"),
    }
    pagination_class = _RedemptionPagination

    @extend_schema(
        summary="An organization's coupons, in the order redeemed",
        tags=["coupons"],
        responses=RedemptionOut(many=True),
        operation_id="redemptions_list",
    )
    def get(self, request, external_id: str):
        organization = organization_visible(request, external_id)
        return page_response(self, request, organization.redemptions.select_related("coupon"), redemption_out)

    @extend_schema(
        summary="Redeem a coupon for an organization",
        tags=["coupons"],
        request=RedeemSerializer,
        responses={201: RedemptionOut, **errors({404: "`not_found` (the organization), `unknown_coupon`"})},
    )
    def post(self, request, external_id: str):
        organization = organization_visible(request, external_id)
        serializer = RedeemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        coupon = Coupon.objects.filter(code=serializer.validated_data["coupon"]).first()
        if coupon is None:
            raise DomainError(
                f"No coupon {serializer.validated_data['coupon']!r}.", code="unknown_coupon", status_code=404
            )
        redemption = coupon_redeem(actor=principal_get(request).user, coupon=coupon, organization=organization)
        return Response(redemption_out(redemption), status=status.HTTP_201_CREATED)


class RedemptionView(APIView):
    permission_classes = [AccessPermission]
    access = {"DELETE": write("billing.delete_couponredemption")}

    @extend_schema(
        summary="Stop a coupon for an organization", tags=["coupons"], request=None, responses={200: RedemptionOut}
    )
    def delete(self, request, external_id: str, code: str):
        organization = organization_visible(request, external_id)
        redemption = get_object_or_404(organization.redemptions.select_related("coupon"), coupon__code=code)
        removed = coupon_redemption_remove(actor=principal_get(request).user, redemption=redemption)
        return Response(redemption_out(removed))
