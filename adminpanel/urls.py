from django.urls import path

from adminpanel import views
from adminpanel.analytics_views import AnalyticsView

app_name = "adminpanel"
urlpatterns = [path("", views.home, name="home")]
urlpatterns += [path("analytics/", AnalyticsView.as_view(), name="analytics")]
