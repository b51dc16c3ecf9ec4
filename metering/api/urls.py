from rest_framework.routers import SimpleRouter

from metering.api.views import MeterViewSet

router = SimpleRouter(trailing_slash=False)
router.register("meters", MeterViewSet, basename="meter")
urlpatterns = router.urls
