"""The log lines never carry a card number (core.logs): Django's request object is not written, and
whatever looks like a card number is masked in the written line."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from django.test import RequestFactory

from core.logs import JsonFormatter, pan_mask


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("card 4242424242424242 declined", "card ************4242 declined"),
        ("4242 4242 4242 4242", "************4242"),
        ("4242-4242-4242-4242", "************4242"),
        ("?pan=4242+4242+4242+4242&x=1", "?pan=************4242&x=1"),
        ("?pan=%204242%204242%204242%204242", "?pan=%20************4242"),
        ("amex 3782 822463 10005", "amex ***********0005"),
        ("invoice 5 4242 4242 4242 4242", "invoice 5 ************4242"),
        ("5555555555554444, 4000056655665556", "************4444, ************5556"),
        # Not card numbers: Luhn fails, too long, too short, a date.
        ("4242424242424241", "4242424242424241"),
        ("4242424242424242424242", "4242424242424242424242"),
        ("424242424242", "424242424242"),
        ("2027-04-10 12:00:00,173", "2027-04-10 12:00:00,173"),
    ],
)
def test_pan_mask(text, masked):
    assert pan_mask(text) == masked


def configured() -> JsonFormatter:
    (console,) = [h for h in logging.getLogger().handlers if h.name == "console"]
    assert isinstance(console.formatter, JsonFormatter)
    return console.formatter


def record(msg, *args, exc_info=None, **extra) -> logging.LogRecord:
    made = logging.LogRecord("payments", logging.WARNING, __file__, 1, msg, args, exc_info)
    made.__dict__.update(extra)
    return made


def test_the_written_line_has_the_number_masked_in_the_message_an_extra_and_a_traceback():
    try:
        int("4242 4242 4242 4242")
    except ValueError:
        exc_info = sys.exc_info()
    line = configured().format(
        record("charging %s", "4242424242424242", exc_info=exc_info, card={"n": "4242-4242-4242-4242"})
    )
    written = json.loads(line)
    assert written["message"] == "charging ************4242"
    assert written["card"] == {"n": "************4242"}
    assert written["exc_info"].endswith("ValueError: invalid literal for int() with base 10: '************4242'")
    assert "4242 4242" not in line and "4242-4242" not in line and "4242424242" not in line


def test_django_s_request_object_is_not_written_and_the_rest_of_the_line_is():
    request = RequestFactory().post("/api/v1/coupons?card_number=4111111111111111&cvc=737")
    line = configured().format(record("Bad Request: %s", request.path, request=request, status_code=400))
    assert json.loads(line) == {
        "time": json.loads(line)["time"],
        "level": "WARNING",
        "name": "payments",
        "message": "Bad Request: /api/v1/coupons",
        "request_id": None,
        "status_code": 400,
    }


def test_format_unmasked_is_the_line_before_the_mask():
    made = record("charging %s", "4242424242424242")
    assert json.loads(configured().format_unmasked(made))["message"] == "charging 4242424242424242"


def test_the_worker_keeps_the_platform_s_log_lines():
    """Celery would otherwise replace the root logger's handlers with its own plain one, and the
    worker, where payments are collected, would write records unmasked."""
    from config.celery import app

    assert app.conf.worker_hijack_root_logger is False
