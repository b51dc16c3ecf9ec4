"""The platform's one domain error, on the lowest floor so every app raises the same kind.

Pricing, tax, meter, ingestion and provisioning errors are subclasses: whatever catches a
DomainError (the API's exception handler, the billing run recording a subscription's problem, an
admin form) handles them all alike, and none of them is answered with a 500.
"""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


class DomainError(Exception):
    """A rule the request broke, raised by services; the API answers it with `status_code` and
    `{"error": {"code", "message", "path"?}}`.

    - `code` is stable: clients branch on it, so it is a literal chosen where the error is
      raised, never derived from a (translatable) message.
    - `message` is for humans and may be reworded.
    - `path` locates the offending value in the input when there is one ("charges[0].price",
      "tiers[2].up_to"); None (or "") when the error is about the input as a whole.
    """

    code: str = "invalid_request"
    status_code: int = 400
    path: str | None = None

    def __init__(
        self, message: str, *, code: str | None = None, status_code: int | None = None, path: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        if path is not None:
            self.path = path


def domain_error_from_validation(exc: ValidationError, *, code: str, unique_code: str | None = None) -> DomainError:
    """The first field error of a model's `full_clean()` as a DomainError: "field: messages" with
    the field as its path. `unique_code` replaces `code` when that field's error is a uniqueness
    violation, recognised by Django's error code ("unique"), never by its translated text."""
    if not hasattr(exc, "error_dict"):
        return DomainError(" ".join(exc.messages), code=code)
    field, errors = next(iter(exc.error_dict.items()))
    messages = [message for error in errors for message in error.messages]
    unique = unique_code is not None and any(error.code == "unique" for error in errors)
    path = None if field == NON_FIELD_ERRORS else field
    text = f"{field}: {' '.join(messages)}"
    return DomainError(text, code=unique_code if unique and unique_code else code, path=path)
