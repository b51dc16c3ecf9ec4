from django.urls import path

from adminpanel import views
from adminpanel.analytics_views import analytics

app_name = "adminpanel"
urlpatterns = [path("", views.home, name="home")]
urlpatterns += [path("analytics/", analytics, name="analytics")]
