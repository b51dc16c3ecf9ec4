from rest_framework.routers import SimpleRouter

from billing.api.views import OrganizationViewSet

router = SimpleRouter(trailing_slash=False)
router.register("organizations", OrganizationViewSet, basename="organization")
urlpatterns = router.urls
