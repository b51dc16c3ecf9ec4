"""Invoices API.

- `GET /api/v1/invoices[?customer=<external_id>][&status=][&limit=][&cursor=]`: newest first,
  cursor-paginated like organizations (`{"next", "previous", "results"}`).
- `GET /api/v1/invoices/<id>`: with its lines, seller and customer snapshots and credit notes.
- `GET /api/v1/invoices/<id>/pdf`: the stored PDF as an attachment (`<number>.pdf`); rendered and
  stored now if the delivery task has not run yet; a void invoice's with a VOID stamp.
- `GET /api/v1/invoices/preview?customer=<external_id>`: the upcoming invoice of each live
  subscription (invoicing.selectors.preview); writes nothing.
- `POST /api/v1/invoices/<id>/finalize | void | mark-paid {reference} | mark-uncollectible`.

Access: read scope (`invoicing.view_invoice`) for GET, write scope and `invoicing.change_invoice`
for the actions. Customer members see only their organizations' invoices
and never drafts (the seller's working state): anything else is 404 `not_found`, the same as an
id that does not exist. Codes: 404 `not_found`, `unknown_customer`; 400 `missing_parameter`,
`invalid_parameter`, `invalid_cursor`, `validation_error`; 409 for a request the invoice's state
refuses (`invoice_not_final`, `invoice_not_draft`, `tax_problem`, `invoice_not_voidable`,
`invoice_partly_paid`, `invoice_not_open`, `invoice_fee_credited`); 422 `pricing_error` (a bill
its usage cannot price: preview, finalize); 503 `pdf_unavailable` (the stored file is gone).
"""

from __future__ import annotations

import logging

from django.db.models import QuerySet
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.pagination import StrictCursorPagination, page_response
from accounts.api.permissions import AccessPermission, read, write
from accounts.api.principal import principal_get
from accounts.api.schema import errors
from billing.api.lookups import organization_visible, param, param_checked, param_choice, param_required
from billing.selectors.organization import organization_list
from core.errors import DomainError
from invoicing.api.formats import draft_out, invoice_out
from invoicing.api.responses import InvoiceDetailOut, InvoiceOut, InvoicePreviewOut
from invoicing.models import Invoice, InvoiceStatus
from invoicing.selectors.preview import invoice_preview_get
from invoicing.services.finalize import invoice_finalize
from invoicing.services.invoice import invoice_mark_paid, invoice_mark_uncollectible, invoice_void

logger = logging.getLogger(__name__)

# Customer members read their own organizations' finalized invoices; only staff and machines act.
READ = {"GET": read("invoicing.view_invoice", members=True)}
CHANGE = {"POST": write("invoicing.change_invoice")}
_MAX_ID = 2**63 - 1
TAGS = ["invoices"]


def id_parse(value: str, *, what: str) -> int:
    """A path id: a positive 64-bit integer, or 404 (no such thing can exist)."""
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= _MAX_ID:
        raise DomainError(f"No {what} {value!r}.", code="not_found", status_code=404)
    return int(value)


def invoices_visible(request) -> QuerySet[Invoice]:
    """The invoices this caller may see: the tenant's for staff and machine credentials; for
    customer members, their organizations' finalized ones."""
    principal = principal_get(request)
    invoices = Invoice.objects.filter(organization__in=organization_list(principal=principal))
    if principal.is_customer_member:
        invoices = invoices.exclude(status=InvoiceStatus.DRAFT)
    return invoices.select_related("organization")


def invoice_visible(request, value: str, *, lines: bool = False) -> Invoice:
    invoices = invoices_visible(request)
    if lines:
        invoices = invoices.prefetch_related("lines", "credit_notes")
    invoice = invoices.filter(pk=id_parse(value, what="invoice")).first()
    if invoice is None:
        raise DomainError(f"No invoice {value!r}.", code="not_found", status_code=404)
    return invoice


class InvoicePagination(StrictCursorPagination):
    ordering = "-id"  # ids grow with creation; created_at ties within one billing run


class MarkPaidSerializer(serializers.Serializer):
    reference = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
_CUSTOMER = OpenApiParameter("customer", OpenApiTypes.STR, description="the organization's external_id")


_UNKNOWN_CUSTOMER = {404: "`unknown_customer`: no such organization the caller may see"}
_UNPRICEABLE = {422: "`pricing_error`: the usage cannot be priced"}


class InvoicesView(APIView):
    permission_classes = [AccessPermission]
    access = READ
    pagination_class = InvoicePagination

    @extend_schema(
        summary="List invoices, newest first",
        tags=TAGS,
        parameters=[_CUSTOMER, OpenApiParameter("status", OpenApiTypes.STR, enum=InvoiceStatus.values)],
        request=None,
        responses={200: InvoiceOut(many=True), **errors(_UNKNOWN_CUSTOMER)},
        operation_id="invoices_list",
    )
    def get(self, request):
        invoices = invoices_visible(request)
        if (customer := param(request, "customer")) is not None:
            customer = param_checked("customer", customer)
            invoices = invoices.filter(organization=organization_visible(request, customer, code="unknown_customer"))
        if (status := param_choice(request, "status", InvoiceStatus.values)) is not None:
            invoices = invoices.filter(status=status)
        return page_response(self, request, invoices, invoice_out)


class InvoiceView(APIView):
    permission_classes = [AccessPermission]
    access = READ

    @extend_schema(
        summary="Get an invoice with its lines",
        tags=TAGS,
        parameters=[_ID],
        request=None,
        responses=InvoiceDetailOut,
        operation_id="invoices_get",
    )
    def get(self, request, pk: str):
        return Response(invoice_out(invoice_visible(request, pk, lines=True), lines=True))


class InvoicePreviewView(APIView):
    permission_classes = [AccessPermission]
    access = READ

    @extend_schema(
        summary="The upcoming invoice of each of a customer's live subscriptions (nothing written)",
        tags=TAGS,
        parameters=[OpenApiParameter("customer", OpenApiTypes.STR, required=True)],
        request=None,
        responses={200: InvoicePreviewOut, **errors({**_UNKNOWN_CUSTOMER, **_UNPRICEABLE})},
        operation_id="invoices_preview",
    )
    def get(self, request):
        organization = organization_visible(request, param_required(request, "customer"), code="unknown_customer")
        drafts = invoice_preview_get(organization=organization)
        return Response({"customer": organization.external_id, "invoices": [draft_out(d) for d in drafts]})


class InvoicePdfView(APIView):
    permission_classes = [AccessPermission]
    access = READ

    def perform_content_negotiation(self, request, force=False):
        # The PDF is a plain file response; errors are JSON whatever the client accepts.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        summary="Download an invoice's PDF",
        tags=TAGS,
        parameters=[_ID],
        request=None,
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="the invoice as issued"),
            **errors(
                {
                    409: "`invoice_not_final`: a draft has no PDF",
                    503: "`pdf_unavailable`: the stored file is gone",
                }
            ),
        },
        operation_id="invoices_pdf",
    )
    def get(self, request, pk: str) -> HttpResponse:
        invoice = invoice_visible(request, pk)
        if invoice.status == InvoiceStatus.DRAFT:
            raise DomainError(
                f"{invoice} is a draft: it has a PDF once finalized.", code="invoice_not_final", status_code=409
            )
        # Stored first if the delivery task has not run yet; a void invoice's carries a VOID stamp.
        from invoicing.services.pdf_store import invoice_pdf_open

        try:
            stored = invoice_pdf_open(invoice=invoice)
        except FileNotFoundError:
            # The PDF is the document as issued: never silently replaced by a new rendering.
            logger.error("stored invoice PDF missing", extra={"invoice": invoice.pk, "file": invoice.pdf.name})
            raise DomainError(
                f"The stored PDF of {invoice} is unavailable.", code="pdf_unavailable", status_code=503
            ) from None
        return FileResponse(
            stored, as_attachment=True, filename=f"{invoice.number}.pdf", content_type="application/pdf"
        )


class _InvoiceActionView(APIView):
    permission_classes = [AccessPermission]
    access = CHANGE

    def act(self, request, invoice: Invoice) -> Invoice:
        raise NotImplementedError

    def post(self, request, pk: str):
        done = self.act(request, invoice_visible(request, pk))
        return Response(invoice_out(invoice_visible(request, str(done.pk), lines=True), lines=True))


class InvoiceFinalizeView(_InvoiceActionView):
    @extend_schema(
        summary="Finalize a draft now (its subscription's earlier drafts first)",
        operation_id="invoices_finalize",
        tags=TAGS,
        parameters=[_ID],
        request=None,
        responses={200: InvoiceDetailOut, **errors({409: "`invoice_not_draft`, `tax_problem`", **_UNPRICEABLE})},
    )
    def post(self, request, pk: str):
        return super().post(request, pk)

    def act(self, request, invoice):
        return invoice_finalize(actor=principal_get(request).user, invoice=invoice)


class InvoiceVoidView(_InvoiceActionView):
    @extend_schema(
        summary="Void an open or uncollectible invoice",
        operation_id="invoices_void",
        tags=TAGS,
        parameters=[_ID],
        request=None,
        responses={
            200: InvoiceDetailOut,
            **errors({409: "`invoice_not_voidable`, `invoice_partly_paid`, `invoice_fee_credited`"}),
        },
    )
    def post(self, request, pk: str):
        return super().post(request, pk)

    def act(self, request, invoice):
        return invoice_void(actor=principal_get(request).user, invoice=invoice)


class InvoiceMarkPaidView(_InvoiceActionView):
    @extend_schema(
        summary="Record a payment received outside a gateway (wire, check)",
        operation_id="invoices_mark_paid",
        tags=TAGS,
        parameters=[_ID],
        request=MarkPaidSerializer,
        responses={200: InvoiceDetailOut, **errors({409: "`invoice_not_open`"})},
    )
    def post(self, request, pk: str):
        return super().post(request, pk)

    def act(self, request, invoice):
        serializer = MarkPaidSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return invoice_mark_paid(
            actor=principal_get(request).user, invoice=invoice, reference=serializer.validated_data["reference"]
        )


class InvoiceMarkUncollectibleView(_InvoiceActionView):
    @extend_schema(
        summary="Mark an open invoice uncollectible",
        operation_id="invoices_mark_uncollectible",
        tags=TAGS,
        parameters=[_ID],
        request=None,
        responses={200: InvoiceDetailOut, **errors({409: "`invoice_not_open`"})},
    )
    def post(self, request, pk: str):
        return super().post(request, pk)

    def act(self, request, invoice):
        return invoice_mark_uncollectible(actor=principal_get(request).user, invoice=invoice)
