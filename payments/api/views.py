"""Payments API.

- `GET /api/v1/payments[?organization=<external_id>][&invoice=<id>][&status=][&limit=][&cursor=]`:
  newest first, cursor-paginated.
- `GET /api/v1/payments/<id>`: with its gateway attempts and its refunds.
- `POST /api/v1/invoices/<id>/pay`: charge the organization's default method now (the payment in
  flight if there is one: calling it twice never charges twice, so no Idempotency-Key header is
  needed, and the API has no such convention). 201 with the payment, whatever its outcome: a
  decline is `failed` with its `failure_code`; with the gateway unreachable it is `pending`, its
  attempt `errored`, and the outbox retries it with the same idempotency key.
- `POST /api/v1/payments/<id>/refunds {amount?, reason?, credit_note?, lines?}`: refund part or all
  of a succeeded payment with its credit note (payments.services.refunds): an existing note of the
  invoice (`credit_note`), or one made from `lines` (as the credit notes API takes them), or of
  everything left on the invoice.
- `GET /api/v1/organizations/<external_id>/payment-methods`: what the gateway holds for the
  organization (brand and last four only), the default marked.

Access: reads for staff, machines with the read scope and customer members (their organizations'
payments only; anything else is 404 `not_found`); paying and refunding need the write scope and
`payments.add_payment` / `payments.add_refund`. Codes: 404 `not_found`, `unknown_organization`;
400 `invalid_parameter`, `validation_error`, `invalid_amount`, `amount_exceeds_refundable`,
`amount_exceeds_credit_note`, `credit_note_mismatch`, `nothing_to_refund`, and the credit note's
own codes; 409 `invoice_not_open`, `no_payment_method`, `payment_not_refundable`,
`credit_note_refunded`, `invoice_not_paid`, `gateway_not_configured`; 502 `gateway_error`."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.pagination import StrictCursorPagination, page_response
from accounts.api.permissions import AccessPermission, read, write
from accounts.api.principal import principal_get
from accounts.api.schema import errors
from billing.api.lookups import organization_visible, param, param_checked, param_choice
from billing.decimals import decimal_parse
from billing.selectors.organization import organization_list
from core.errors import DomainError
from invoicing.api.credit_notes import AmountField, CreditNoteLineSerializer
from invoicing.api.invoices import id_parse, invoice_visible
from invoicing.services.invoice import CreditNoteLineInput
from payments.api.formats import payment_out, refund_out
from payments.api.responses import PaymentDetailOut, PaymentMethodsOut, PaymentOut, RefundOut
from payments.gateways.base import GatewayDown, GatewayError
from payments.models import CollectionMethod, Payment, PaymentStatus, Refund
from payments.services.collection import invoice_pay, payment_retry_enqueue
from payments.services.methods import payment_methods_list
from payments.services.refunds import RefundInput, payment_refund

TAGS = ["payments"]
READ = {"GET": read("payments.view_payment", members=True)}
_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
_GATEWAY = {
    409: "`gateway_not_configured`: the tenant has not connected the gateway",
    502: "`gateway_error`: the gateway refused the request",
}


def payments_visible(request):
    principal = principal_get(request)
    return Payment.objects.filter(organization__in=organization_list(principal=principal)).select_related(
        "invoice", "organization"
    )


def payment_visible(request, value: str) -> Payment:
    payment = payments_visible(request).filter(pk=id_parse(value, what="payment")).first()
    if payment is None:
        raise DomainError(f"No payment {value!r}.", code="not_found", status_code=404)
    return payment


def _gateway_refused(error: GatewayError) -> DomainError:
    if error.code == "gateway_not_configured":
        return DomainError(str(error), code="gateway_not_configured", status_code=409)
    return DomainError(f"The gateway refused the request: {error}", code="gateway_error", status_code=502)


class PaymentPagination(StrictCursorPagination):
    ordering = "-id"


class PaymentsView(APIView):
    permission_classes = [AccessPermission]
    access = READ
    pagination_class = PaymentPagination

    @extend_schema(
        summary="List payments, newest first",
        tags=TAGS,
        parameters=[
            OpenApiParameter("organization", OpenApiTypes.STR, description="the organization's external_id"),
            OpenApiParameter("invoice", OpenApiTypes.INT),
            OpenApiParameter("status", OpenApiTypes.STR, enum=PaymentStatus.values),
        ],
        request=None,
        responses={200: PaymentOut(many=True), **errors({404: "`unknown_organization`"})},
        operation_id="payments_list",
    )
    def get(self, request):
        payments = payments_visible(request)
        if (organization := param(request, "organization")) is not None:
            organization = param_checked("organization", organization)
            payments = payments.filter(
                organization=organization_visible(request, organization, code="unknown_organization")
            )
        if (invoice := param(request, "invoice")) is not None:
            if not invoice.isascii() or not invoice.isdigit() or not 0 < int(invoice) < 2**63:
                raise DomainError("'invoice' must be an invoice id.", code="invalid_parameter")
            payments = payments.filter(invoice_id=int(invoice))
        if (state := param_choice(request, "status", PaymentStatus.values)) is not None:
            payments = payments.filter(status=state)
        return page_response(self, request, payments, payment_out)


class PaymentView(APIView):
    permission_classes = [AccessPermission]
    access = READ

    @extend_schema(
        summary="Get a payment with its gateway attempts and refunds",
        tags=TAGS,
        parameters=[_ID],
        request=None,
        responses=PaymentDetailOut,
        operation_id="payments_get",
    )
    def get(self, request, pk: str):
        return Response(payment_out(payment_visible(request, pk), detail=True))


class InvoicePayView(APIView):
    permission_classes = [AccessPermission]
    access = {"POST": write("payments.add_payment")}

    @extend_schema(
        summary="Charge an open invoice to the organization's default payment method now",
        tags=TAGS,
        parameters=[_ID],
        request=None,
        responses={
            201: PaymentDetailOut,
            **errors(
                {409: "`invoice_not_open`, `no_payment_method`, `gateway_not_configured`", 502: "`gateway_error`"}
            ),
        },
        operation_id="invoices_pay",
    )
    def post(self, request, pk: str):
        invoice = invoice_visible(request, pk)
        try:
            payment = invoice_pay(actor=principal_get(request).user, invoice=invoice)
        except GatewayDown:
            # The payment exists (pending, its attempt errored): the outbox takes it from here.
            payment = payment_retry_enqueue(invoice_id=invoice.pk)
            return Response(payment_out(payment, detail=True), status=status.HTTP_201_CREATED)
        except GatewayError as error:
            raise _gateway_refused(error) from error
        payment = payments_visible(request).get(pk=payment.pk)
        return Response(payment_out(payment, detail=True), status=status.HTTP_201_CREATED)


class RefundInSerializer(serializers.Serializer):
    amount = AmountField(required=False, help_text='gross amount to give back, a decimal string, e.g. "10.00"')
    reason = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)
    credit_note = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, help_text="an existing credit note of the invoice"
    )
    lines = CreditNoteLineSerializer(many=True, required=False, help_text="the credit note to make, by line")


class PaymentRefundsView(APIView):
    permission_classes = [AccessPermission]
    access = {"POST": write("payments.add_refund")}

    @extend_schema(
        summary="Refund part or all of a succeeded payment, with its credit note",
        tags=TAGS,
        parameters=[_ID],
        request=RefundInSerializer,
        responses={
            201: RefundOut,
            **errors(
                {
                    409: "`payment_not_refundable`, `credit_note_refunded`, `invoice_not_paid`",
                    **{k: v for k, v in _GATEWAY.items() if k == 502},
                }
            ),
        },
        operation_id="payment_refunds_create",
    )
    def post(self, request, pk: str):
        payment = payment_visible(request, pk)
        serializer = RefundInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "credit_note" in data and data.get("lines"):
            raise DomainError("Give either `credit_note` or `lines`, not both.", code="validation_error")
        amount = decimal_parse(data["amount"], field="amount") if "amount" in data else None
        lines, seen = [], set()
        for index, item in enumerate(data.get("lines") or []):
            if item["line"] in seen:
                raise DomainError(f"lines[{index}]: line {item['line']} is named twice.", code="duplicate_line")
            seen.add(item["line"])
            lines.append(
                CreditNoteLineInput(
                    invoice_line_id=item["line"], amount=decimal_parse(item["amount"], field=f"lines[{index}].amount")
                )
            )
        refund = payment_refund(
            actor=principal_get(request).user,
            payment_id=payment.pk,
            refund=RefundInput(
                reason=data["reason"], amount=amount, credit_note_id=data.get("credit_note"), lines=tuple(lines)
            ),
        )
        refund = Refund.objects.select_related("credit_note").get(pk=refund.pk)
        return Response(refund_out(refund), status=status.HTTP_201_CREATED)


class OrganizationPaymentMethodsView(APIView):
    permission_classes = [AccessPermission]
    access = {"GET": read("payments.view_paymentcustomer", members=True)}

    @extend_schema(
        summary="The payment methods the gateway holds for an organization",
        tags=TAGS,
        parameters=[OpenApiParameter("external_id", OpenApiTypes.STR, OpenApiParameter.PATH)],
        request=None,
        responses={200: PaymentMethodsOut, **errors(_GATEWAY)},
        operation_id="organization_payment_methods_list",
    )
    def get(self, request, external_id: str):
        organization = organization_visible(request, external_id)
        try:
            payer, methods = payment_methods_list(organization=organization)
        except GatewayError as error:
            raise _gateway_refused(error) from error
        default = payer.default_payment_method_id if payer else ""
        return Response(
            {
                "customer": organization.external_id,
                "collection_method": payer.collection_method if payer else CollectionMethod.AUTOMATIC,
                "gateway": payer.gateway if payer else None,
                "methods": [
                    {
                        "id": m.id,
                        "type": str(m.type),
                        "label": m.label,
                        "expires": m.expires,
                        "default": m.id == default,
                    }
                    for m in methods
                ],
            }
        )
