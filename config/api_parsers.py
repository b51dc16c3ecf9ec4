"""The API's JSON parser: DRF's, plus what a body must satisfy before any view or serializer sees
it, so that no malformed body reaches Python recursion or PostgreSQL as a 500:

- nesting at most MAX_DEPTH levels (deeper JSON makes the decoder, serializers and the jsonb
  adapter recurse; 10,000 levels raise RecursionError);
- no NUL character and no lone surrogate ("\\ud800") in any string or key: PostgreSQL text and
  jsonb cannot hold either (NUL is refused by PostgreSQL, a surrogate cannot be encoded as UTF-8);
- no number beyond a float's range (`1e400` decodes to infinity); NaN and Infinity literals are
  already refused by DRF's strict JSON.

The depth and number problems are `malformed_request`; a bad string is a `validation_error` that
names the field (`metadata.note`) with the code DRF's CharField uses for NUL,
`null_characters_not_allowed`, or `invalid_unicode`. The ingestion endpoint does not use DRF and
checks events its own way (metering.ingest)."""

from __future__ import annotations

import math

from rest_framework import exceptions, parsers

MAX_DEPTH = 32


def _path(parts: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in parts) or "non_field_errors"


def _string_problem(text: str) -> tuple[str, str] | None:
    if "\x00" in text:
        return "null_characters_not_allowed", "Null characters are not allowed."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "invalid_unicode", "Must be valid Unicode text: a lone surrogate such as \\ud800 is not."
    return None


def json_body_check(data: object) -> None:
    """Raise ParseError or ValidationError for a decoded body the API cannot take (module
    docstring). Iterative, so a deep body cannot make the check itself recurse."""
    stack: list[tuple[object, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict | list) and len(path) >= MAX_DEPTH:
            raise exceptions.ParseError(f"The JSON body is nested deeper than {MAX_DEPTH} levels.")
        if isinstance(value, dict):
            for key, item in value.items():
                if problem := _string_problem(key):
                    code, message = problem
                    raise exceptions.ValidationError({_path(path): [exceptions.ErrorDetail(message, code=code)]})
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
        elif isinstance(value, str):
            if problem := _string_problem(value):
                code, message = problem
                raise exceptions.ValidationError({_path(path): [exceptions.ErrorDetail(message, code=code)]})
        elif isinstance(value, float) and not math.isfinite(value):
            raise exceptions.ParseError(f"The number at {_path(path)} is out of range.")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(f"The JSON body is nested deeper than {MAX_DEPTH} levels.") from None
        json_body_check(data)
        return data
