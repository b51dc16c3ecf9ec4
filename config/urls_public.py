"""The platform's own host (TENANT_HOST_SUFFIX): a landing page. Health endpoints are answered by
config.health on every host."""

from django.urls import path
from django.views.generic import TemplateView

urlpatterns = [
    path("", TemplateView.as_view(template_name="public/landing.html"), name="landing"),
]
