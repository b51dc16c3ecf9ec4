"""One cursor pagination for the API's lists: `?limit=` (1 to the list's maximum) and an opaque
`?cursor=` the API gave out. A malformed limit or cursor is a 400 with a stable code, never a
silently different page."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination

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

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            cursor = False
        position = cursor.position if cursor else None
        if cursor is False or (position is not None and not (position.isascii() and position.isdigit())):
            raise DomainError("'cursor' is not a cursor this API gave out.", code="invalid_cursor")
        return cursor
