"""A tenant's host: customer portal at /, staff at /admin/ and /staff/, API at /api/v1/."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from accounts.api import webhooks
from config.api_schema import CachedSchemaView
from metering.api.events import events_ingest_view
from payments.views import paypal_webhook, stripe_webhook

urlpatterns = [
    path("accounts/", include("allauth.urls")),
    path("_allauth/", include("allauth.headless.urls")),
    path("", include("allauth.idp.urls")),
    path("admin/", admin.site.urls),
    path("staff/", include("adminpanel.urls")),
    path("api/v1/events", events_ingest_view, name="events-ingest"),
    path("api/v1/", include("metering.api.urls")),
    path("api/v1/", include("billing.api.urls")),
    path("api/v1/", include("invoicing.api.urls")),
    path("api/v1/", include("payments.api.urls")),
    path("api/v1/", include("dunning.api")),
    path("api/v1/webhook-endpoints", webhooks.WebhookEndpointsView.as_view(), name="webhook-endpoints"),
    path("api/v1/webhook-endpoints/<str:pk>", webhooks.WebhookEndpointView.as_view(), name="webhook-endpoint"),
    path(
        "api/v1/webhook-endpoints/<str:pk>/rotate-secret",
        webhooks.WebhookEndpointRotateView.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path(
        "api/v1/webhook-endpoints/<str:pk>/deliveries",
        webhooks.WebhookDeliveriesView.as_view(),
        name="webhook-endpoint-deliveries",
    ),
    path(
        "api/v1/webhook-endpoints/<str:pk>/deliveries/<str:delivery>/replay",
        webhooks.WebhookDeliveryReplayView.as_view(),
        name="webhook-delivery-replay",
    ),
    path("api/schema/", CachedSchemaView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("payments/stripe/webhook", stripe_webhook, name="payments-stripe-webhook"),
    path("payments/paypal/webhook", paypal_webhook, name="payments-paypal-webhook"),
    path("", include("portal.urls")),
]
