"""One cursor pagination for the API's lists: `?limit=` (1 to the list's maximum) and an opaque
`?cursor=` the API gave out; every list answers `{"next", "previous", "results"}` and none is cut
silently. A malformed limit or cursor is a 400 with a stable code, never a silently different
page.

A list view sets `pagination_class` (a subclass naming its `ordering`, a unique column) and
answers with `page_response`; declaring `responses=ItemSerializer(many=True)` then gives the
schema its page shape and parameters (drf-spectacular reads the view's `pagination_class`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from core.errors import DomainError


class StrictCursorPagination(CursorPagination):
    ordering = "-id"  # ids grow with creation
    page_size = 100
    max_page_size = 1000
    page_size_query_param = "limit"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise DomainError(
                f"'limit' must be a whole number from 1 to {self.max_page_size}.", code="invalid_parameter"
            )
        return int(raw)

    def position_valid(self, position: str) -> bool:
        """Whether a decoded position can be compared with the ordering column: the cursor is
        only base64, so anything could be in it, and an integer column compared with text is a
        database error."""
        return position.isascii() and position.isdigit()

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            cursor = False
        position = cursor.position if cursor else None
        if cursor is False or (position is not None and not self.position_valid(position)):
            raise DomainError("'cursor' is not a cursor this API gave out.", code="invalid_cursor")
        return cursor

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = f"1-{self.max_page_size}, default {self.page_size}"
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
            elif parameter["name"] == self.cursor_query_param:
                parameter["description"] = "the `next` or `previous` link's cursor, as the API gave it out"
        return parameters


class TextCursorPagination(StrictCursorPagination):
    """Ordered by a unique text column (a code): any text is a position PostgreSQL can compare,
    except one holding NUL."""

    def position_valid(self, position: str) -> bool:
        return "\x00" not in position


def page_parameters(pagination_class: type[StrictCursorPagination]) -> list[OpenApiParameter]:
    """The page parameters for a view that paginates without `pagination_class` (a page that
    carries more than `next`, `previous` and `results`)."""
    return [
        OpenApiParameter(
            parameter["name"],
            OpenApiTypes.INT if parameter["schema"]["type"] == "integer" else OpenApiTypes.STR,
            description=parameter["description"],
        )
        for parameter in pagination_class().get_schema_operation_parameters(None)
    ]


def page_response(view, request, queryset: QuerySet, render: Callable[[Any], Any]) -> Response:
    """The page of `queryset` the request asks for, each item through `render`, paginated by the
    view's `pagination_class`."""
    paginator = view.pagination_class()
    page: Iterable[Any] = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response([render(item) for item in page])
