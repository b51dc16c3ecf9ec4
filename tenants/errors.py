"""The platform's base error, at the lowest floor so every app can raise it."""

from __future__ import annotations


class DomainError(Exception):
    """A rule the request broke, raised by services; the API answers it with `status_code` and
    `{"error": {"code", "message"}}`. Codes are stable: clients may branch on them."""

    code = "invalid_request"
    status_code = 400

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
