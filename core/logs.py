"""The platform's log lines (settings.LOGGING's `json` formatter), which never carry a card number
(PCI DSS SAQ-A, issue 11: no card number reaches our servers' logs).

Two layers. The cause: Django's request logging hands the request object to handlers as `extra`
(for handlers that read it, such as mail to admins), and python-json-logger writes every extra, so
each 4xx/5xx line carried the request's repr with its whole query string, whatever a client put in
it. The path is already in the message and `request_id` ties the line to the request, so the
request is not written. The defence in depth: whatever else looks like a card number (13 to 19
digits, grouped by spaces or dashes, or URL-encoded, passing Luhn) is masked in the written line.

The mask works on the formatted line rather than in a logging.Filter: a filter would have to
rewrite the record in place (Python 3.11's filters cannot hand on a copy), which every later
handler shares, and could reach neither an extra's str() nor a traceback without redoing the
formatter's work. Luhn is python-stdnum's; no maintained library does the masking itself."""

from __future__ import annotations

import logging
import re
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter
from stdnum import luhn

__all__ = ["JsonFormatter", "pan_mask"]

_SEPARATOR = r"(?:[ +-]|%20)"
# A run of digit groups joined by single separators, not starting inside a longer run of digits
# nor within a URL-encoded space (the "20" of "%204242...").
_RUN = re.compile(rf"(?:(?<=%20)|(?<![\d%]))\d+(?:{_SEPARATOR}\d+)*")
_TOKEN = re.compile(rf"{_SEPARATOR}|\d+")


def _run_masked(match: re.Match[str]) -> str:
    """The run with each card number in it masked: a number is written as whole groups ("5 4242
    4242 4242 4242" holds one), so every span of whole groups of 13 to 19 digits is tried."""
    run = match.group()
    groups = [m for m in _TOKEN.finditer(run) if m.group()[0].isdigit()]
    out, done = [], 0
    i = 0
    while i < len(groups):
        digits = ""
        for j in range(i, len(groups)):
            digits += groups[j].group()
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn.is_valid(digits):
                out += [run[done : groups[i].start()], "*" * (len(digits) - 4) + digits[-4:]]
                done, i = groups[j].end(), j
                break
        i += 1
    return "".join([*out, run[done:]])


def pan_mask(text: str) -> str:
    """The text with every card number in it reduced to its last four digits (as receipts show)."""
    return _RUN.sub(_run_masked, text)


class JsonFormatter(BaseJsonFormatter):
    """python-json-logger's formatter without the request object and with card numbers masked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request"])
        super().__init__(*args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return pan_mask(super().format(record))

    def format_unmasked(self, record: logging.LogRecord) -> str:
        """The line as written without the mask: what the PCI sweep searches, so that a card
        number logged by the platform's own code is found at its cause rather than hidden."""
        return super().format(record)
