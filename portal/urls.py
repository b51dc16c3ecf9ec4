from django.urls import path

from portal import views

app_name = "portal"
urlpatterns = [
    path("", views.home, name="home"),
    path("organizations/<str:external_id>/", views.organization_detail, name="organization"),
]
