from django.urls import path

from portal import views

app_name = "portal"
urlpatterns = [
    path("", views.home, name="home"),
    path("organizations/<str:external_id>/", views.organization_detail, name="organization"),
    path("organizations/<str:external_id>/billing/", views.billing_history, name="billing"),
    path("organizations/<str:external_id>/invoices/<int:invoice_id>/pdf/", views.invoice_pdf, name="invoice_pdf"),
    path("organizations/<str:external_id>/projection/", views.projection, name="projection"),
]
