"""Subscriptions API: /api/v1/subscriptions[/<id>]. Scoped like organizations: customer members see
only their organizations' subscriptions."""

from datetime import datetime

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import ScopePermission
from accounts.api.principal import principal_get
from billing.models import BillingMode, PlanVersion, Subscription
from billing.selectors.organization import organization_list
from billing.services.subscription import subscription_create
from tenants.errors import DomainError

SCOPES = {"GET": "read", "HEAD": "read", "POST": "write"}


class SubscriptionInSerializer(serializers.Serializer):
    customer = serializers.CharField(max_length=255, help_text="the organization's external_id")
    plan = serializers.CharField(max_length=100, help_text="the plan's code")
    plan_version = serializers.IntegerField(min_value=1, required=False, help_text="default: the latest")
    # Parsed by the view: DRF would silently read a time without an offset as UTC.
    start_at = serializers.CharField(required=False, max_length=64)
    billing_mode = serializers.ChoiceField(choices=BillingMode.choices, default=BillingMode.CALENDAR)


def subscription_out(s: Subscription) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {
        "id": s.pk,
        "customer": s.organization.external_id,
        "plan": s.plan_version.plan.code,
        "plan_version": s.plan_version.version,
        "status": s.status,
        "billing_mode": s.billing_mode,
        "billing_anchor": iso(s.billing_anchor),
        "started_at": iso(s.started_at),
        "current_period_start": iso(s.current_period_start),
        "current_period_end": iso(s.current_period_end),
        "trial_end": iso(s.trial_end),
        "cancel_at_period_end": s.cancel_at_period_end,
    }


def _visible(request):
    organizations = organization_list(principal=principal_get(request))
    return Subscription.objects.filter(organization__in=organizations).select_related(
        "organization", "plan_version__plan"
    )


class SubscriptionsView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = SCOPES

    @extend_schema(
        summary="List subscriptions (optionally of one customer)",
        tags=["subscriptions"],
        responses=dict,
        operation_id="subscriptions_list",
    )
    def get(self, request):
        subscriptions = _visible(request).order_by("id")
        if customer := request.query_params.get("customer"):
            subscriptions = subscriptions.filter(organization__external_id=customer)
        return Response({"results": [subscription_out(s) for s in subscriptions[:1000]]})

    @extend_schema(
        summary="Subscribe an organization to a plan, now or from a date",
        tags=["subscriptions"],
        request=SubscriptionInSerializer,
        responses=dict,
    )
    def post(self, request):
        serializer = SubscriptionInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        start_at = None
        if "start_at" in data:
            try:
                start_at = datetime.fromisoformat(data["start_at"])
            except ValueError:
                start_at = None
            if start_at is None or start_at.tzinfo is None:
                raise DomainError(
                    "start_at must be RFC 3339 with an offset, e.g. 2027-01-01T00:00:00Z.", code="invalid_datetime"
                )
        organization = organization_list(principal=principal_get(request)).filter(external_id=data["customer"]).first()
        if organization is None:
            raise DomainError(f"No organization {data['customer']!r}.", code="unknown_customer", status_code=404)
        versions = PlanVersion.objects.filter(plan__code=data["plan"]).select_related("plan")
        version = (
            (versions.filter(version=data["plan_version"]) if "plan_version" in data else versions)
            .order_by("-version")
            .first()
        )
        if version is None:
            raise DomainError(f"No plan {data['plan']!r} (or no such version).", code="unknown_plan", status_code=404)
        subscription = subscription_create(
            actor=principal_get(request).user,
            organization=organization,
            plan_version=version,
            start_at=start_at,
            billing_mode=data["billing_mode"],
        )
        return Response(subscription_out(subscription), status=status.HTTP_201_CREATED)


class SubscriptionView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = SCOPES

    @extend_schema(
        summary="Get a subscription", tags=["subscriptions"], responses=dict, operation_id="subscriptions_get"
    )
    def get(self, request, pk: int):
        return Response(subscription_out(get_object_or_404(_visible(request), pk=pk)))
