from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from billing.api.plans import PlansView, PlanVersionsView, PlanView
from billing.api.subscriptions import SubscriptionsView, SubscriptionView
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
    path("plans/<str:code>", PlanView.as_view(), name="plan"),
    path("plans/<str:code>/versions", PlanVersionsView.as_view(), name="plan-versions"),
    # Any customer an event can carry (1-255 characters), not only organization external ids.
    re_path(r"^customers/(?P<external_id>[^/]{1,255})/usage$", CustomerUsageView.as_view(), name="customer-usage"),
]
