from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from billing.api.coupons import CouponsView, CouponView, RedemptionsView, RedemptionView
from billing.api.credits import CreditsView, CreditVoidView
from billing.api.plans import PlanLimitsView, PlansView, PlanVersionsView, PlanView
from billing.api.subscriptions import (
    SubscriptionCancelView,
    SubscriptionChangePlanView,
    SubscriptionResumeView,
    SubscriptionsView,
    SubscriptionView,
)
from billing.api.usage import CustomerUsageView, UsageView
from billing.api.views import OrganizationViewSet

router = SimpleRouter(trailing_slash=False)
router.register("organizations", OrganizationViewSet, basename="organization")
urlpatterns = router.urls
urlpatterns += [
    path("usage", UsageView.as_view(), name="usage"),
    path("plans", PlansView.as_view(), name="plans"),
    path("subscriptions", SubscriptionsView.as_view(), name="subscriptions"),
    path("subscriptions/<int:pk>", SubscriptionView.as_view(), name="subscription"),
    path("subscriptions/<int:pk>/change-plan", SubscriptionChangePlanView.as_view(), name="subscription-change"),
    path(
        "subscriptions/<int:pk>/change-plan/preview",
        SubscriptionChangePlanView.as_view(preview=True),
        name="subscription-change-preview",
    ),
    path("subscriptions/<int:pk>/cancel", SubscriptionCancelView.as_view(), name="subscription-cancel"),
    path(
        "subscriptions/<int:pk>/cancel/preview",
        SubscriptionCancelView.as_view(preview=True),
        name="subscription-cancel-preview",
    ),
    path("subscriptions/<int:pk>/resume", SubscriptionResumeView.as_view(), name="subscription-resume"),
    path("coupons", CouponsView.as_view(), name="coupons"),
    path("coupons/<str:code>", CouponView.as_view(), name="coupon"),
    path("organizations/<str:external_id>/coupons", RedemptionsView.as_view(), name="organization-coupons"),
    path("organizations/<str:external_id>/coupons/<str:code>", RedemptionView.as_view(), name="organization-coupon"),
    path("organizations/<str:external_id>/credits", CreditsView.as_view(), name="organization-credits"),
    path(
        "organizations/<str:external_id>/credits/<int:pk>/void",
        CreditVoidView.as_view(),
        name="organization-credit-void",
    ),
    path("plans/<str:code>", PlanView.as_view(), name="plan"),
    path("plans/<str:code>/versions", PlanVersionsView.as_view(), name="plan-versions"),
    path("plans/<str:code>/limits", PlanLimitsView.as_view(), name="plan-limits"),
    # Any customer an event can carry (1-255 characters), not only organization external ids.
    re_path(r"^customers/(?P<external_id>[^/]{1,255})/usage$", CustomerUsageView.as_view(), name="customer-usage"),
]
