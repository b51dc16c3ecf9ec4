"""Usage read API.

- `GET /api/v1/usage?customer=<external_id>&meter=<code>[&from=&to=][&group_by=true][&window=hour|day]`
  → `{"customer", "meter", "from", "to", "value", "groups": [...], "series": [...]}`
- `GET /api/v1/customers/<external_id>/usage` → `{"customer", "from", "to", "meters": {code: value}}`

Decimals are strings (null where there is no value: max, min, latest of nothing), instants RFC 3339
in UTC. `from`/`to` default to the customer's current billing period (see
billing.selectors.usage.usage_period_default). Read scope, like the organizations API; customer
members see only their own organizations (404 `not_found` otherwise, the same as an unknown one).

400 codes: `missing_parameter`, `invalid_parameter` (a NUL character in customer or meter),
`invalid_datetime` (not RFC 3339 with an offset), `invalid_group_by`, `invalid_window`,
`invalid_range` (from >= to), `window_too_large` (hour: 31 days, day: 366 days), `unknown_meter`
(400, not 404: the meter is a query parameter, the resource exists).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import AccessPermission, read
from accounts.api.principal import principal_get
from accounts.api.schema import errors
from billing.api.formats import instant_parse
from billing.api.lookups import param, param_checked, param_required
from billing.api.responses import CustomerUsageOut, UsageOut
from billing.selectors.usage import customer_usage_get, usage_report_get
from core.errors import DomainError
from metering.selectors.usage import WINDOWS

# An unencoded "+" in a query string arrives as a space: "2026-03-01T00:00:00 01:00".
_SPACED_OFFSET = re.compile(r"^(.*\d{2}:\d{2}:\d{2}(?:\.\d+)?) (\d{2}:\d{2})$")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
# Usage is read per organization: customer members read their own (the selectors scope it).
# An organization's usage key (made in the portal) reads its own organization's usage here only.
_ACCESS = {"GET": read("billing.view_organization", members=True, organization_keys=True)}


def _datetime_param(request, name: str) -> datetime | None:
    raw = param(request, name)
    if raw is None:
        return None
    value = instant_parse(_SPACED_OFFSET.sub(r"\1+\2", raw), field=f"'{name}'")
    assert value is not None
    return value.astimezone(UTC)


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_USAGE_PARAMETERS = [
    OpenApiParameter("customer", OpenApiTypes.STR, required=True, description="The organization's external_id."),
    OpenApiParameter("meter", OpenApiTypes.STR, required=True, description="The meter's code."),
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="Inclusive start; default: the current period's."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="Exclusive end; default: the current period's."),
    OpenApiParameter("group_by", OpenApiTypes.BOOL, description="Split by the meter's group_by dimensions."),
    OpenApiParameter("window", OpenApiTypes.STR, enum=list(WINDOWS), description="A series of UTC hours or days."),
]


class UsageView(APIView):
    """One meter's usage by one customer over a range (default: the current billing period)."""

    permission_classes = [AccessPermission]
    access = _ACCESS

    @extend_schema(
        summary="Usage of one meter by one customer",
        tags=["usage"],
        parameters=_USAGE_PARAMETERS,
        responses={200: UsageOut, **errors({404: "`not_found`: no such customer the caller may see"})},
    )
    def get(self, request):
        customer, meter_code = param_required(request, "customer"), param_required(request, "meter")
        start, end = _datetime_param(request, "from"), _datetime_param(request, "to")
        group_by_text = param(request, "group_by")
        group_by = _BOOLEANS.get((group_by_text or "false").lower())
        if group_by is None:
            raise DomainError("group_by must be true or false.", code="invalid_group_by")
        window = param(request, "window")
        if window is not None and window not in WINDOWS:
            raise DomainError(f"window must be one of {', '.join(WINDOWS)}.", code="invalid_window")
        result = usage_report_get(
            principal=principal_get(request),
            customer=customer,
            meter_code=meter_code,
            start=start,
            end=end,
            group_by=group_by,
            window=window,
        )
        body: dict[str, Any] = {
            "customer": result.customer,
            "meter": result.meter,
            "from": _instant(result.start),
            "to": _instant(result.end),
            "value": _decimal(result.value),
            "groups": [{"group": g["group"], "value": _decimal(g["value"])} for g in result.groups],
            "series": [{"start": _instant(b["start"]), "value": _decimal(b["value"])} for b in result.series],
        }
        return Response(body)


class CustomerUsageView(APIView):
    """Every meter's usage by one customer over its current billing period."""

    permission_classes = [AccessPermission]
    access = _ACCESS

    @extend_schema(summary="Usage of every meter by one customer", tags=["usage"], responses=CustomerUsageOut)
    def get(self, request, external_id: str):
        usage = customer_usage_get(principal=principal_get(request), customer=param_checked("customer", external_id))
        return Response(
            {
                "customer": usage.customer,
                "from": _instant(usage.start),
                "to": _instant(usage.end),
                "meters": {code: _decimal(value) for code, value in usage.meters.items()},
            }
        )
