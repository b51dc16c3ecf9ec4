"""Invoicing's API under /api/v1/ (config.urls_tenant). Ids are taken as text and parsed by the
views, so a malformed one is a JSON 404 like an unknown one."""

from django.urls import path

from invoicing.api.credit_notes import CreditNoteView, InvoiceCreditNotesView
from invoicing.api.invoices import (
    InvoiceFinalizeView,
    InvoiceMarkPaidView,
    InvoiceMarkUncollectibleView,
    InvoicePdfView,
    InvoicePreviewView,
    InvoicesView,
    InvoiceView,
    InvoiceVoidView,
)

urlpatterns = [
    path("invoices", InvoicesView.as_view(), name="invoices"),
    path("invoices/preview", InvoicePreviewView.as_view(), name="invoice-preview"),  # before <pk>
    path("invoices/<str:pk>", InvoiceView.as_view(), name="invoice"),
    path("invoices/<str:pk>/pdf", InvoicePdfView.as_view(), name="invoice-pdf"),
    path("invoices/<str:pk>/finalize", InvoiceFinalizeView.as_view(), name="invoice-finalize"),
    path("invoices/<str:pk>/void", InvoiceVoidView.as_view(), name="invoice-void"),
    path("invoices/<str:pk>/mark-paid", InvoiceMarkPaidView.as_view(), name="invoice-mark-paid"),
    path(
        "invoices/<str:pk>/mark-uncollectible",
        InvoiceMarkUncollectibleView.as_view(),
        name="invoice-mark-uncollectible",
    ),
    path("invoices/<str:pk>/credit-notes", InvoiceCreditNotesView.as_view(), name="invoice-credit-notes"),
    path("credit-notes/<str:pk>", CreditNoteView.as_view(), name="credit-note"),
]
