"""Credit balance API: /api/v1/organizations/<external_id>/credits[/<id>/void]. The balance is
derived from the ledger; entries are only ever added."""

from decimal import Decimal

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.pagination import StrictCursorPagination, page_parameters
from accounts.api.permissions import AccessPermission, read, write
from accounts.api.principal import principal_get
from billing.api.formats import amount_text, instant_parse, instant_text
from billing.api.lookups import organization_visible
from billing.api.responses import CreditEntryOut, CreditLedgerPage
from billing.decimals import decimal_parse
from billing.models import GRANT_KINDS, CreditEntry, CreditKind
from billing.selectors.credit import credit_balance_get, credit_entries_list, credit_grants_usable
from billing.services.credit import credit_grant, credit_void
from core.money import round_money


class GrantSerializer(serializers.Serializer):
    amount = serializers.CharField(max_length=32)
    currency = serializers.CharField(max_length=3, required=False)
    kind = serializers.ChoiceField(
        choices=[CreditKind.PURCHASE, CreditKind.PROMOTIONAL], default=CreditKind.PROMOTIONAL
    )
    expires_at = serializers.CharField(required=False, allow_null=True, default=None, max_length=64)
    description = serializers.CharField(required=False, default="", allow_blank=True, max_length=300)


class VoidSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, default="", allow_blank=True, max_length=300)


def entry_out(e: CreditEntry, remaining: dict[int, Decimal]) -> dict:
    out = {
        "id": e.pk,
        "kind": e.kind,
        "amount": amount_text(round_money(e.amount, e.currency)),
        "currency": e.currency,
        "created_at": instant_text(e.created_at),
        "description": e.description,
        "reference": e.reference,
    }
    if e.kind in GRANT_KINDS:
        out["expires_at"] = instant_text(e.expires_at)
        out["remaining"] = amount_text(round_money(remaining.get(e.pk, Decimal(0)), e.currency))
    else:
        out["grant"] = e.grant_id
    return out


class LedgerPagination(StrictCursorPagination):
    ordering = "id"  # the order entries were added


class CreditsView(APIView):
    permission_classes = [AccessPermission]
    access = {"GET": read("billing.view_creditentry", members=True), "POST": write("billing.add_creditentry")}

    @extend_schema(
        summary="An organization's credit balance and a page of its ledger, oldest first",
        tags=["credits"],
        # Not `pagination_class` on the view: the page carries the balance too.
        parameters=page_parameters(LedgerPagination),
        responses=CreditLedgerPage,
    )
    def get(self, request, external_id: str):
        organization = organization_visible(request, external_id)
        now = timezone.now()
        balance = credit_balance_get(organization=organization, at=now)
        remaining = {
            g.grant.pk: g.remaining
            for g in credit_grants_usable(organization=organization, currency=organization.currency, at=now)
        }
        paginator = LedgerPagination()
        page = paginator.paginate_queryset(credit_entries_list(organization=organization), request, view=self)
        return Response(
            {
                "currency": balance.currency,
                "balance": amount_text(balance.rounded().amount),
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "results": [entry_out(e, remaining) for e in page],
            }
        )

    @extend_schema(
        summary="Grant credit (purchased or promotional)",
        tags=["credits"],
        request=GrantSerializer,
        responses={201: CreditEntryOut},
    )
    def post(self, request, external_id: str):
        organization = organization_visible(request, external_id)
        serializer = GrantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        entry = credit_grant(
            actor=principal_get(request).user,
            organization=organization,
            amount=decimal_parse(data["amount"], field="amount"),
            currency=data.get("currency", organization.currency),
            kind=data["kind"],
            expires_at=instant_parse(data["expires_at"], field="expires_at"),
            description=data["description"],
        )
        return Response(entry_out(entry, {entry.pk: entry.amount}), status=status.HTTP_201_CREATED)


class CreditVoidView(APIView):
    permission_classes = [AccessPermission]
    access = {"POST": write("billing.add_creditentry")}  # a void is a new ledger entry

    @extend_schema(
        summary="Void what is left of a credit grant",
        tags=["credits"],
        request=VoidSerializer,
        responses={201: CreditEntryOut},
    )
    def post(self, request, external_id: str, pk: int):
        organization = organization_visible(request, external_id)
        grant = get_object_or_404(CreditEntry, pk=pk, organization=organization)
        serializer = VoidSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = credit_void(
            actor=principal_get(request).user, grant=grant, description=serializer.validated_data["description"]
        )
        return Response(entry_out(entry, {}), status=status.HTTP_201_CREATED)
