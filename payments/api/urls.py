"""The payments API under /api/v1/ (config.urls_tenant). Ids are taken as text and parsed by the
views, so a malformed one is a JSON 404 like an unknown one."""

from django.urls import path

from payments.api.views import (
    InvoicePayView,
    OrganizationPaymentMethodsView,
    PaymentRefundsView,
    PaymentsView,
    PaymentView,
)

urlpatterns = [
    path("payments", PaymentsView.as_view(), name="payments"),
    path("payments/<str:pk>", PaymentView.as_view(), name="payment"),
    path("payments/<str:pk>/refunds", PaymentRefundsView.as_view(), name="payment-refunds"),
    path("invoices/<str:pk>/pay", InvoicePayView.as_view(), name="invoice-pay"),
    path(
        "organizations/<str:external_id>/payment-methods",
        OrganizationPaymentMethodsView.as_view(),
        name="organization-payment-methods",
    ),
]
