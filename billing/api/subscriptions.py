"""Subscriptions API: /api/v1/subscriptions[/<id>[/change-plan|/cancel[/preview]|/resume]].
Scoped like organizations: customer members see only their organizations' subscriptions (and
hold only the read scope, so changes go through staff, machine credentials or the portal).

A change or cancellation answers with the subscription and the bill due when it takes effect;
its `/preview` twin answers the same and writes nothing."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.pagination import StrictCursorPagination, page_response
from accounts.api.permissions import AccessPermission, read, write
from accounts.api.principal import principal_get
from accounts.api.schema import errors
from billing.api.formats import bill_out, instant_parse, instant_text
from billing.api.lookups import INTEGER_COLUMN_MAX, organization_visible
from billing.api.responses import SubscriptionChangeOut, SubscriptionOut
from billing.models import BillingMode, PlanVersion, Subscription
from billing.selectors.organization import organization_list
from billing.services.subscription import (
    ChangeTiming,
    SubscriptionChange,
    subscription_cancel,
    subscription_change_plan,
    subscription_create,
    subscription_resume,
)
from core.errors import DomainError


class SubscriptionInSerializer(serializers.Serializer):
    customer = serializers.CharField(max_length=255, help_text="the organization's external_id")
    plan = serializers.CharField(max_length=100, help_text="the plan's code")
    plan_version = serializers.IntegerField(
        min_value=1, max_value=INTEGER_COLUMN_MAX, required=False, help_text="default: the latest"
    )
    # Parsed by the view: DRF would silently read a time without an offset as UTC.
    start_at = serializers.CharField(required=False, max_length=64)
    billing_mode = serializers.ChoiceField(choices=BillingMode.choices, default=BillingMode.CALENDAR)


class ChangePlanSerializer(serializers.Serializer):
    plan = serializers.CharField(max_length=100, help_text="the plan's code")
    plan_version = serializers.IntegerField(
        min_value=1, max_value=INTEGER_COLUMN_MAX, required=False, help_text="default: the latest"
    )
    timing = serializers.ChoiceField(
        choices=[ChangeTiming.NOW, ChangeTiming.PERIOD_END],
        required=False,
        allow_null=True,
        default=None,
        help_text="default: upgrades now, downgrades at period end",
    )


class CancelSerializer(serializers.Serializer):
    at_period_end = serializers.BooleanField(default=True)


def subscription_out(s: Subscription) -> dict:
    now = timezone.now()
    pending = [p for p in s.phases.all() if p.starts_at > now and p.starts_at > s.started_at]
    scheduled = None
    if pending:
        phase = pending[-1]
        scheduled = {
            "plan": phase.plan_version.plan.code,
            "plan_version": phase.plan_version.version,
            "effective_at": instant_text(phase.starts_at),
        }
    return {
        "id": s.pk,
        "customer": s.organization.external_id,
        "plan": s.plan_version.plan.code,
        "plan_version": s.plan_version.version,
        "status": s.status,
        "billing_mode": s.billing_mode,
        "billing_anchor": instant_text(s.billing_anchor),
        "started_at": instant_text(s.started_at),
        "current_period_start": instant_text(s.current_period_start),
        "current_period_end": instant_text(s.current_period_end),
        "trial_end": instant_text(s.trial_end),
        "cancel_at_period_end": s.cancel_at_period_end,
        "canceled_at": instant_text(s.canceled_at),
        "ended_at": instant_text(s.ended_at),
        "scheduled_change": scheduled,
        "billed_through": instant_text(s.billed_through),
        "next_bill_at": instant_text(s.next_bill_at),
    }


def change_out(change: SubscriptionChange) -> dict:
    return {
        "kind": change.kind,
        "preview": change.preview,
        "effective_at": instant_text(change.effective_at),
        "subscription": subscription_out(change.subscription),
        "bill": bill_out(change.bill),
    }


def _visible(request):
    organizations = organization_list(principal=principal_get(request))
    return (
        Subscription.objects.filter(organization__in=organizations)
        .select_related("organization", "plan_version__plan")
        .prefetch_related("phases__plan_version__plan")
    )


def _version(plan: str, version: int | None) -> PlanVersion:
    versions = PlanVersion.objects.filter(plan__code=plan).select_related("plan")
    found = (versions.filter(version=version) if version is not None else versions).order_by("-version").first()
    if found is None:
        raise DomainError(f"No plan {plan!r} (or no such version).", code="unknown_plan", status_code=404)
    return found


class _Pagination(StrictCursorPagination):
    ordering = "id"


# A bill the subscription's usage cannot price (billing.bill.BillPricingError).
_UNPRICEABLE = {422: "`pricing_error`: the bill due at the change cannot be priced"}


class SubscriptionsView(APIView):
    permission_classes = [AccessPermission]
    access = {"GET": read("billing.view_subscription", members=True), "POST": write("billing.add_subscription")}
    pagination_class = _Pagination

    @extend_schema(
        summary="List subscriptions (optionally of one customer), oldest first",
        tags=["subscriptions"],
        parameters=[OpenApiParameter("customer", OpenApiTypes.STR, description="the organization's external_id")],
        responses=SubscriptionOut(many=True),
        operation_id="subscriptions_list",
    )
    def get(self, request):
        subscriptions = _visible(request)
        if customer := request.query_params.get("customer"):
            subscriptions = subscriptions.filter(organization__external_id=customer)
        return page_response(self, request, subscriptions, subscription_out)

    @extend_schema(
        summary="Subscribe an organization to a plan, now or from a date",
        tags=["subscriptions"],
        request=SubscriptionInSerializer,
        responses={
            201: SubscriptionOut,
            **errors({404: "`unknown_customer`, `unknown_plan` (or no such version)"}),
        },
    )
    def post(self, request):
        serializer = SubscriptionInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        start_at = instant_parse(data.get("start_at"), field="start_at")
        organization = organization_visible(request, data["customer"], code="unknown_customer")
        subscription = subscription_create(
            actor=principal_get(request).user,
            organization=organization,
            plan_version=_version(data["plan"], data.get("plan_version")),
            start_at=start_at,
            billing_mode=data["billing_mode"],
        )
        return Response(subscription_out(_visible(request).get(pk=subscription.pk)), status=status.HTTP_201_CREATED)


class SubscriptionView(APIView):
    permission_classes = [AccessPermission]
    access = {"GET": read("billing.view_subscription", members=True)}

    @extend_schema(
        summary="Get a subscription",
        tags=["subscriptions"],
        responses=SubscriptionOut,
        operation_id="subscriptions_get",
    )
    def get(self, request, pk: int):
        return Response(subscription_out(get_object_or_404(_visible(request), pk=pk)))


class SubscriptionChangePlanView(APIView):
    # The preview twin needs what the change needs: it shows a bill only to who may cause it.
    permission_classes = [AccessPermission]
    access = {"POST": write("billing.change_subscription")}
    preview = False

    @extend_schema(
        summary="Change a subscription's plan (upgrade now, downgrade at period end by default); "
        "its /preview twin shows the bill and writes nothing",
        tags=["subscriptions"],
        request=ChangePlanSerializer,
        responses={
            200: SubscriptionChangeOut,
            **errors({404: "`not_found`, `unknown_plan` (or no such version)", **_UNPRICEABLE}),
        },
    )
    def post(self, request, pk: int):
        subscription = get_object_or_404(_visible(request), pk=pk)
        serializer = ChangePlanSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        change = subscription_change_plan(
            actor=principal_get(request).user,
            subscription=subscription,
            plan_version=_version(data["plan"], data.get("plan_version")),
            timing=data["timing"],
            preview=self.preview,
        )
        return Response(change_out(change))


class SubscriptionCancelView(APIView):
    permission_classes = [AccessPermission]
    access = {"POST": write("billing.change_subscription")}
    preview = False

    @extend_schema(
        summary="Cancel a subscription at period end (default) or at once; /preview writes nothing",
        tags=["subscriptions"],
        request=CancelSerializer,
        responses={200: SubscriptionChangeOut, **errors(_UNPRICEABLE)},
    )
    def post(self, request, pk: int):
        subscription = get_object_or_404(_visible(request), pk=pk)
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        change = subscription_cancel(
            actor=principal_get(request).user,
            subscription=subscription,
            at_period_end=serializer.validated_data["at_period_end"],
            preview=self.preview,
        )
        return Response(change_out(change))


class SubscriptionResumeView(APIView):
    permission_classes = [AccessPermission]
    access = {"POST": write("billing.change_subscription")}

    @extend_schema(
        summary="Take back a cancellation at period end",
        tags=["subscriptions"],
        request=None,
        responses=SubscriptionOut,
    )
    def post(self, request, pk: int):
        subscription = get_object_or_404(_visible(request), pk=pk)
        resumed = subscription_resume(actor=principal_get(request).user, subscription=subscription)
        return Response(subscription_out(_visible(request).get(pk=resumed.pk)))
