from django.urls import path

from adminpanel import compliance_views, export_views, revenue_views, views
from adminpanel.analytics_views import AnalyticsView

app_name = "adminpanel"
urlpatterns = [path("", views.home, name="home")]
# Customer 360 and the audit log (issue 14 items 1 and 7).
urlpatterns += [
    path("organizations/", views.organizations, name="organizations"),
    path("organizations/<str:external_id>/", views.organization, name="organization"),
    path("organizations/<str:external_id>/subscriptions/", views.subscription_add, name="subscription_add"),
    path("organizations/<str:external_id>/plan-change/", views.plan_change, name="plan_change"),
    path("organizations/<str:external_id>/credit/", views.credit_add, name="credit_add"),
    path("organizations/<str:external_id>/credit-notes/", views.credit_note_add, name="credit_note_add"),
    path("organizations/<str:external_id>/coupons/", views.coupon_apply, name="coupon_apply"),
    path("organizations/<str:external_id>/refunds/", views.refund, name="refund"),
    path("organizations/<str:external_id>/one-off-charges/", views.one_off_charge, name="one_off_charge"),
    path("organizations/<str:external_id>/close/", views.close, name="close"),
    path("organizations/<str:external_id>/notes/", views.note_add, name="note_add"),
    path("invoices/<int:pk>/pdf/", views.invoice_pdf, name="invoice_pdf"),
    path("audit/", views.audit_log, name="audit_log"),
    path("audit/export.csv", views.audit_log_csv, name="audit_log_csv"),
]
# Dunning (issue 12's "Staff") and the staff suspension.
urlpatterns += [
    path("dunning/", views.dunning, name="dunning"),
    path("organizations/<str:external_id>/dunning/pause/", views.dunning_pause_set, name="dunning_pause"),
    path("organizations/<str:external_id>/dunning/retry/", views.dunning_retry, name="dunning_retry"),
    path("organizations/<str:external_id>/dunning/write-off/", views.dunning_write_off_view, name="dunning_write_off"),
    path("organizations/<str:external_id>/suspension/", views.suspension_set, name="suspension"),
]
urlpatterns += [path("analytics/", AnalyticsView.as_view(), name="analytics")]
# The compliance dashboard (issue 14 item 6): live checks, second approver, GDPR export and erasure.
urlpatterns += [
    path("compliance/", compliance_views.dashboard, name="compliance"),
    path("compliance/run/", compliance_views.run_checks, name="compliance_run"),
    path("compliance/thresholds/", compliance_views.threshold_set, name="threshold_set"),
    path("compliance/approvals/<int:pk>/approve/", compliance_views.approval_approve, name="approval_approve"),
    path("compliance/approvals/<int:pk>/reject/", compliance_views.approval_reject, name="approval_reject"),
    path("compliance/gdpr/export/", compliance_views.gdpr_export, name="gdpr_export"),
    path("compliance/gdpr/erase/", compliance_views.gdpr_erase, name="gdpr_erase"),
]
# Revenue recognition (issue 14, item 4).
urlpatterns += [
    path("revenue/", revenue_views.revenue, name="revenue"),
    path("revenue/close/", revenue_views.revenue_close, name="revenue_close"),
]
# Accounting exports (issue 14, item 5).
urlpatterns += [
    path("revenue/journal.csv", revenue_views.journal_csv, name="journal_csv"),
    path("revenue/journal.xlsx", revenue_views.journal_xlsx, name="journal_xlsx"),
    path("revenue/accounts/", revenue_views.account_map, name="account_map"),
]
# Accounting exports as background tasks (issue 14, item 5): journal layouts, invoices, lines,
# payments, customers.
urlpatterns += [
    path("exports/", export_views.exports, name="exports"),
    path("exports/new/", export_views.export_create, name="export_create"),
    path("exports/<int:pk>/", export_views.export_status, name="export_status"),
    path("exports/<int:pk>/<str:fmt>/", export_views.export_file, name="export_file"),
]
