from django.urls import path

from portal import alert_views, payment_views, plan_views, report_views, team_views, views

app_name = "portal"
urlpatterns = [
    path("", views.home, name="home"),
    path("organizations/<str:external_id>/", views.organization_detail, name="organization"),
    path("organizations/<str:external_id>/billing/", views.billing_history, name="billing"),
    path("organizations/<str:external_id>/invoices/<int:invoice_id>/pdf/", views.invoice_pdf, name="invoice_pdf"),
    path("organizations/<str:external_id>/projection/", views.projection, name="projection"),
    path("organizations/<str:external_id>/plan/", plan_views.plan, name="plan"),
    path("organizations/<str:external_id>/plan/change/", plan_views.plan_change, name="plan_change"),
    path("organizations/<str:external_id>/plan/cancel/", plan_views.plan_cancel, name="plan_cancel"),
    path("organizations/<str:external_id>/plan/resume/", plan_views.plan_resume, name="plan_resume"),
    path("organizations/<str:external_id>/reports/", report_views.reports, name="reports"),
    path(
        "organizations/<str:external_id>/reports/download/<str:fmt>/",
        report_views.report_download,
        name="report_download",
    ),
    path("organizations/<str:external_id>/reports/statement/", report_views.statement, name="report_statement"),
    path(
        "organizations/<str:external_id>/reports/exports/",
        report_views.report_export_create,
        name="report_export_create",
    ),
    path(
        "organizations/<str:external_id>/reports/exports/<int:export_id>/",
        report_views.report_export,
        name="report_export",
    ),
    path(
        "organizations/<str:external_id>/reports/exports/<int:export_id>/<str:fmt>/",
        report_views.report_export_file,
        name="report_export_file",
    ),
    path("organizations/<str:external_id>/alerts/", alert_views.alerts, name="alerts"),
    path("organizations/<str:external_id>/alerts/add/", alert_views.alert_add, name="alert_add"),
    path("organizations/<str:external_id>/alerts/remove/", alert_views.alert_remove, name="alert_remove"),
    path("organizations/<str:external_id>/alerts/caps/", alert_views.cap_set, name="cap_set"),
    path("organizations/<str:external_id>/alerts/caps/remove/", alert_views.cap_remove, name="cap_remove"),
    path("organizations/<str:external_id>/team/", team_views.team, name="team"),
    path("organizations/<str:external_id>/team/invite/", team_views.member_invite, name="member_invite"),
    path("organizations/<str:external_id>/team/role/", team_views.member_role, name="member_role"),
    path("organizations/<str:external_id>/team/remove/", team_views.member_remove, name="member_remove"),
    path("organizations/<str:external_id>/team/keys/", team_views.usage_key_create, name="usage_key_create"),
    path("organizations/<str:external_id>/team/keys/revoke/", team_views.usage_key_revoke, name="usage_key_revoke"),
    path("organizations/<str:external_id>/payment-methods/", payment_views.payment_methods, name="payment_methods"),
    path(
        "organizations/<str:external_id>/payment-methods/setup/",
        payment_views.payment_method_setup,
        name="payment_method_setup",
    ),
    path(
        "organizations/<str:external_id>/payment-methods/added/",
        payment_views.payment_method_added,
        name="payment_method_added",
    ),
    path("organizations/<str:external_id>/payment-methods/paypal/", payment_views.paypal_start, name="paypal_start"),
    path(
        "organizations/<str:external_id>/payment-methods/paypal/return/",
        payment_views.paypal_return,
        name="paypal_return",
    ),
    path(
        "organizations/<str:external_id>/payment-methods/paypal/cancel/",
        payment_views.paypal_cancel,
        name="paypal_cancel",
    ),
    path(
        "organizations/<str:external_id>/payment-methods/default/",
        payment_views.payment_method_default,
        name="payment_method_default",
    ),
    path(
        "organizations/<str:external_id>/payment-methods/remove/",
        payment_views.payment_method_delete,
        name="payment_method_remove",
    ),
    path(
        "organizations/<str:external_id>/payment-methods/collection/",
        payment_views.collection_method,
        name="collection_method",
    ),
    path(
        "organizations/<str:external_id>/invoices/<int:invoice_id>/pay/",
        payment_views.invoice_pay_now,
        name="invoice_pay",
    ),
    path(
        "organizations/<str:external_id>/invoices/<int:invoice_id>/payments/<int:payment_id>/refresh/",
        payment_views.payment_refreshed,
        name="payment_refresh",
    ),
]
