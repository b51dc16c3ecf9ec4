"""Credit notes API: `GET|POST /api/v1/invoices/<id>/credit-notes`, `GET /api/v1/credit-notes/<id>`.

POST `{"reason": "...", "lines": [{"line": <invoice line id>, "amount": "10.00"}]}` credits part or
all of finalized lines (net amounts, plain decimal strings in the currency's decimals); tax is
credited in proportion (invoicing.services.invoice.credit_note_create). Codes: 400
`validation_error` (shape), `invalid_amount`, `duplicate_line`, `reason_required`,
`lines_required`, `unknown_line`, `amount_exceeds_line`; 409 `invoice_not_final`; 404
`not_found`. Visibility is the invoice's (invoicing.api.invoices)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.pagination import StrictCursorPagination, page_response
from accounts.api.permissions import AccessPermission, read, write
from accounts.api.principal import principal_get
from accounts.api.schema import errors
from billing.decimals import decimal_parse
from core.errors import DomainError
from invoicing.api.formats import credit_note_out
from invoicing.api.invoices import id_parse, invoice_visible, invoices_visible
from invoicing.api.responses import CreditNoteOut
from invoicing.models import CreditNote
from invoicing.services.invoice import CreditNoteLineInput, credit_note_create

TAGS = ["credit notes"]
_PK = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


@extend_schema_field(OpenApiTypes.STR)
class AmountField(serializers.Field):
    """Taken as sent and read by billing.decimals.decimal_parse in the view: only a plain decimal
    string is an amount (a JSON number would be a float, or silently become one)."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class CreditNoteLineSerializer(serializers.Serializer):
    line = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="the invoice line's id")
    amount = AmountField(help_text='net amount to credit, a decimal string, e.g. "10.00"')


class CreditNoteInSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, allow_blank=True)
    lines = CreditNoteLineSerializer(many=True, allow_empty=True)


def _notes(request):
    return (
        CreditNote.objects.filter(invoice__in=invoices_visible(request))
        .select_related("invoice__organization")
        .prefetch_related("lines")
    )


class _Pagination(StrictCursorPagination):
    ordering = "id"  # the order issued


class InvoiceCreditNotesView(APIView):
    permission_classes = [AccessPermission]
    access = {"GET": read("invoicing.view_creditnote", members=True), "POST": write("invoicing.add_creditnote")}
    pagination_class = _Pagination

    @extend_schema(
        summary="An invoice's credit notes, oldest first",
        tags=TAGS,
        parameters=[_PK],
        request=None,
        responses=CreditNoteOut(many=True),
        operation_id="invoice_credit_notes_list",
    )
    def get(self, request, pk: str):
        invoice = invoice_visible(request, pk)
        return page_response(self, request, _notes(request).filter(invoice=invoice), credit_note_out)

    @extend_schema(
        summary="Credit part or all of an invoice's lines",
        tags=TAGS,
        parameters=[_PK],
        request=CreditNoteInSerializer,
        responses={201: CreditNoteOut, **errors({409: "`invoice_not_final`"})},
        operation_id="invoice_credit_notes_create",
    )
    def post(self, request, pk: str):
        invoice = invoice_visible(request, pk)
        serializer = CreditNoteInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        lines, seen = [], set()
        for index, item in enumerate(data["lines"]):
            # The service checks each amount against what is left of its line as stored, so one
            # request naming a line twice could credit it twice over: one entry per line.
            if item["line"] in seen:
                raise DomainError(f"lines[{index}]: line {item['line']} is named twice.", code="duplicate_line")
            seen.add(item["line"])
            amount = decimal_parse(item["amount"], field=f"lines[{index}].amount")
            lines.append(CreditNoteLineInput(invoice_line_id=item["line"], amount=amount))
        note = credit_note_create(
            actor=principal_get(request).user, invoice=invoice, reason=data["reason"], lines=lines
        )
        return Response(credit_note_out(_notes(request).get(pk=note.pk)), status=status.HTTP_201_CREATED)


class CreditNoteView(APIView):
    permission_classes = [AccessPermission]
    access = {"GET": read("invoicing.view_creditnote", members=True)}

    @extend_schema(
        summary="Get a credit note",
        tags=TAGS,
        parameters=[_PK],
        request=None,
        responses=CreditNoteOut,
        operation_id="credit_notes_get",
    )
    def get(self, request, pk: str):
        note = _notes(request).filter(pk=id_parse(pk, what="credit note")).first()
        if note is None:
            raise DomainError(f"No credit note {pk!r}.", code="not_found", status_code=404)
        return Response(credit_note_out(note))
