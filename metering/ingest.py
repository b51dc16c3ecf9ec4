"""Decoding and validating usage events (no database here).

Fast path: msgspec decodes the whole body into typed structs in one C call (~0.5 µs an event).
If anything in the batch does not fit, the slow path decodes the events one by one and checks each
field by hand, so every bad event gets its own stable code while the good ones are still accepted.

Body forms:
- one event object, or `{"events": [...]}` (at most MAX_EVENTS events and MAX_BODY_BYTES);
- CloudEvents 1.0: `application/cloudevents+json` (one) or `application/cloudevents-batch+json`
  (an array): `id`, `source`, `type`, `subject` (the customer), `time`, `data` (the properties).

An event: `id` (1-255 chars, the idempotency key), `customer` (the organization's external_id),
`type`, `timestamp` (RFC 3339 with an offset; defaults to the time of receipt), `properties` (a
JSON object of at most MAX_PROPERTIES_BYTES). Unknown fields are ignored.

Properties are decoded in full before an event is accepted, because whatever is accepted must be
storable and readable downstream (an event the drainer cannot store stops nothing any more, but
it is lost to dead letters after a 202): valid UTF-8, no NUL (PostgreSQL text and jsonb cannot
hold it), at most MAX_PROPERTY_DEPTH levels of nesting, strings and keys of at most
MAX_STRING_LENGTH characters, and numbers a JSON reader can hold as a 64-bit float (|x| < 1e308)
and PostgreSQL as numeric (at most MAX_NUMBER_FRACTION_DIGITS digits after the point). The value
a meter takes from an event is checked against the meter (metering.meters.value_problem).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from core.errors import DomainError
from metering.meters import ValueRule, value_problem

MAX_EVENTS = 10_000
MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_PROPERTIES_BYTES = 16 * 1024
MAX_ID_LENGTH = 255
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_PROPERTY_DEPTH = 32  # levels of objects and arrays; the properties object is level 1
MAX_STRING_LENGTH = 1024  # characters, for keys and string values in properties
NUMBER_LIMIT = Decimal("1e308")  # |x| below it: a JSON reader holds it as a 64-bit float
MAX_NUMBER_FRACTION_DIGITS = 1000  # PostgreSQL numeric refuses exponents below -1000
_INT_LIMIT = 10**308
EMPTY_OBJECT = msgspec.Raw(b"{}")

CONTENT_JSON = "application/json"
CONTENT_CLOUDEVENT = "application/cloudevents+json"
CONTENT_CLOUDEVENT_BATCH = "application/cloudevents-batch+json"


class BodyError(DomainError):
    """The body as a whole is unusable: nothing is accepted."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message, code=code, status_code=status)


class EventIn(msgspec.Struct):
    id: str
    customer: str
    type: str
    timestamp: datetime | None = None
    properties: msgspec.Raw = EMPTY_OBJECT


class BatchIn(msgspec.Struct):
    events: list[EventIn]


class CloudEventIn(msgspec.Struct):
    specversion: str
    id: str
    source: str
    type: str
    subject: str
    time: datetime | None = None
    data: msgspec.Raw = EMPTY_OBJECT


class _RawBatch(msgspec.Struct):
    events: list[msgspec.Raw]


@dataclass
class Decoded:
    # (id, customer, type, timestamp, raw properties JSON)
    events: list[tuple[str, str, str, datetime, msgspec.Raw]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0


_batch_decoder = msgspec.json.Decoder(BatchIn)
_event_decoder = msgspec.json.Decoder(EventIn)
_cloud_decoder = msgspec.json.Decoder(CloudEventIn)
_cloud_batch_decoder = msgspec.json.Decoder(list[CloudEventIn])
_raw_batch_decoder = msgspec.json.Decoder(_RawBatch)
_raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_any_decoder = msgspec.json.Decoder()
_datetime_decoder = msgspec.json.Decoder(datetime)
# Non-integers as exact Decimals (1e400 stays 1E+400 instead of becoming inf); integers as int.
_properties_decoder = msgspec.json.Decoder(float_hook=Decimal)

Rules = Mapping[str, Sequence[ValueRule]]


def decode_events(
    body: bytes, *, content_type: str, now: datetime, window: timedelta, value_rules: Rules | None = None
) -> Decoded:
    """Decode and validate a request body. Raises BodyError when the body itself is unusable.
    `value_rules` (event type → the rules of the meters counting it) checks the values meters take.
    Nothing else escapes: whatever the bytes, the answer is a Decoded or a BodyError."""
    try:
        return _decode_events(body, content_type=content_type, now=now, window=window, rules=value_rules or {})
    except UnicodeDecodeError:
        # msgspec checks UTF-8 in every string it decodes (ids, keys, ...), but not in the
        # properties it keeps raw: those are checked per event in _accept.
        raise BodyError("malformed_json", "The body is not valid UTF-8.") from None
    except RecursionError:
        raise BodyError(
            "invalid_body",
            f"The body nests too deeply (properties may nest at most {MAX_PROPERTY_DEPTH} levels).",
        ) from None


def _decode_events(body: bytes, *, content_type: str, now: datetime, window: timedelta, rules: Rules) -> Decoded:
    if len(body) > MAX_BODY_BYTES:
        raise BodyError("payload_too_large", f"The body exceeds {MAX_BODY_BYTES} bytes.", 413)
    if not body.strip():
        raise BodyError("empty_body", 'The body is empty: send one event or {"events": [...]}.')
    earliest, latest = now - window, now + FUTURE_TOLERANCE
    if content_type == CONTENT_CLOUDEVENT:
        return _decode_cloud(body, batch=False, now=now, earliest=earliest, latest=latest, rules=rules)
    if content_type == CONTENT_CLOUDEVENT_BATCH:
        return _decode_cloud(body, batch=True, now=now, earliest=earliest, latest=latest, rules=rules)
    if content_type != CONTENT_JSON:
        raise BodyError(
            "unsupported_media_type",
            f"Content-Type must be {CONTENT_JSON}, {CONTENT_CLOUDEVENT} or {CONTENT_CLOUDEVENT_BATCH}.",
            415,
        )
    stripped = body.lstrip()
    if stripped[:1] != b"{":
        _check_json(body)
        raise BodyError("invalid_body", 'The body must be one event object or {"events": [...]}.')
    try:
        if _is_batch(stripped):
            structs = _batch_decoder.decode(body).events
            _check_count(len(structs))
        else:
            structs = [_event_decoder.decode(body)]
    except msgspec.ValidationError:
        return _decode_slow(body, now=now, earliest=earliest, latest=latest, rules=rules)
    except msgspec.DecodeError as exc:
        raise BodyError("malformed_json", f"The body is not valid JSON: {exc}.") from None
    out = Decoded(total=len(structs))
    for index, event in enumerate(structs):
        _accept_event(out, index, event, now=now, earliest=earliest, latest=latest, rules=rules)
    return out


def _is_batch(body: bytes) -> bool:
    # A batch is an object whose only meaningful key is "events"; decide cheaply, then let the
    # typed decoders (or the slow path) do the real work.
    try:
        top = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    except msgspec.ValidationError:  # a subclass of DecodeError: first
        raise BodyError("invalid_body", "The body must be a JSON object.") from None
    except msgspec.DecodeError:
        raise BodyError("malformed_json", "The body is not valid JSON.") from None
    return "events" in top


def _check_json(body: bytes) -> None:
    try:
        _any_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise BodyError("malformed_json", f"The body is not valid JSON: {exc}.") from None


def _check_count(count: int) -> None:
    if count > MAX_EVENTS:
        raise BodyError("too_many_events", f"A batch holds at most {MAX_EVENTS} events; this one has {count}.", 413)
    if count == 0:
        raise BodyError("empty_batch", "The batch has no events.")


def _reject(out: Decoded, index: int, event_id: Any, code: str, message: str) -> None:
    out.rejected.append(
        {"index": index, "id": event_id if isinstance(event_id, str) else None, "code": code, "message": message}
    )


def _accept(
    out, index, event_id, customer, event_type, timestamp, properties, *, now, earliest, latest, rules, where
) -> None:
    # PostgreSQL text cannot hold NUL: such an event would be accepted and then never stored.
    if not 0 < len(event_id) <= MAX_ID_LENGTH or "\x00" in event_id:
        return _reject(out, index, event_id, "invalid_id", f"id must be 1-{MAX_ID_LENGTH} characters, without NUL.")
    if not 0 < len(customer) <= MAX_ID_LENGTH or "\x00" in customer:
        return _reject(
            out, index, event_id, "invalid_customer", f"customer must be 1-{MAX_ID_LENGTH} characters, without NUL."
        )
    if not 0 < len(event_type) <= MAX_ID_LENGTH or "\x00" in event_type:
        return _reject(out, index, event_id, "invalid_type", f"type must be 1-{MAX_ID_LENGTH} characters, without NUL.")
    if timestamp is None:
        timestamp = now
    elif timestamp.tzinfo is None:
        return _reject(out, index, event_id, "invalid_timestamp", "timestamp needs a UTC offset (RFC 3339), e.g. Z.")
    if not earliest <= timestamp <= latest:
        return _reject(
            out,
            index,
            event_id,
            "timestamp_out_of_window",
            f"timestamp must lie between {earliest.isoformat()} and {latest.isoformat()}.",
        )
    raw = bytes(properties)
    if raw[:1] != b"{":
        return _reject(out, index, event_id, "invalid_properties", f"{where} must be a JSON object.")
    if len(raw) > MAX_PROPERTIES_BYTES:
        return _reject(
            out,
            index,
            event_id,
            "properties_too_large",
            f"{where} exceed {MAX_PROPERTIES_BYTES} bytes ({len(raw)}).",
        )
    if not raw.isascii():  # msgspec keeps properties raw: their UTF-8 is unchecked so far
        try:
            raw.decode()
        except UnicodeDecodeError:
            return _reject(out, index, event_id, "invalid_properties", f"{where} must be valid UTF-8.")
    meters = rules.get(event_type)
    ordinary = _ordinary(raw)
    if meters or not ordinary:
        try:
            value = _properties_decoder.decode(raw)
        except (msgspec.DecodeError, RecursionError):  # e.g. an integer of 5,000 digits
            return _reject(
                out, index, event_id, "invalid_properties", f"{where} hold a number out of range (|x| < 1e308)."
            )
        if meters:
            problem = value_problem(value, meters, where=where)
            if problem is not None:
                return _reject(out, index, event_id, "invalid_value", problem)
        if not ordinary:
            problem = properties_problem(value, where=where)
            if problem is not None:
                return _reject(out, index, event_id, "invalid_properties", problem)
    out.events.append((event_id, customer, event_type, timestamp.astimezone(UTC), properties))
    return None


# A number can break a limit only with an exponent or with hundreds of digits. The exponent
# pattern looks for a number after ':', ',' or '[' (where JSON values start), so hexadecimal ids
# ("9e1f…") rarely trip it; text that does only costs the full check.
_EXPONENT = re.compile(rb"[:,\[]\s*-?[0-9]+(?:\.[0-9]+)?[eE]")
_LONG_DIGITS = re.compile(rb"[0-9]{300}")


def _ordinary(raw: bytes) -> bool:
    """True when the bytes alone prove properties_problem has nothing to find (most events;
    the full check costs ~3 µs an event, these byte scans a fraction of that): no string longer
    than the whole, no deeper nesting than brackets, no NUL escape, no risky number."""
    return (
        len(raw) <= MAX_STRING_LENGTH
        and raw.count(b"{") + raw.count(b"[") <= MAX_PROPERTY_DEPTH
        and b"\\u0000" not in raw
        and _EXPONENT.search(raw) is None
        and _LONG_DIGITS.search(raw) is None
    )


def _number_fits(number: Decimal) -> bool:
    return (
        number.is_finite()
        and number.copy_abs() < NUMBER_LIMIT
        and number.as_tuple().exponent >= -MAX_NUMBER_FRACTION_DIGITS  # type: ignore[operator]
    )


def properties_problem(value: Any, *, where: str = "properties") -> str | None:
    """What in decoded properties no store or reader downstream can take, as a message naming
    where it is (`properties.a[0].b`); None when everything fits. Iterative: depth is bounded by
    MAX_PROPERTY_DEPTH, not by the interpreter's stack."""
    stack: list[tuple[Any, int, str]] = [(value, 1, where)]
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_PROPERTY_DEPTH:
            return f"{path} nests deeper than {MAX_PROPERTY_DEPTH} levels of objects and arrays."
        items = node.items() if type(node) is dict else enumerate(node)
        for key, item in items:
            if type(key) is str and (len(key) > MAX_STRING_LENGTH or "\x00" in key):
                return f"{path} has a key longer than {MAX_STRING_LENGTH} characters or containing NUL (\\u0000)."
            kind = type(item)
            if kind is str:
                if len(item) > MAX_STRING_LENGTH or "\x00" in item:
                    return (
                        f"{_child(path, key)} must be a string of at most {MAX_STRING_LENGTH} characters "
                        "without NUL (\\u0000)."
                    )
            elif kind is dict or kind is list:
                stack.append((item, depth + 1, _child(path, key)))
            elif (kind is int and not -_INT_LIMIT < item < _INT_LIMIT) or (kind is Decimal and not _number_fits(item)):
                return (
                    f"{_child(path, key)} is a number out of range: |x| < 1e308 with at most "
                    f"{MAX_NUMBER_FRACTION_DIGITS} digits after the point."
                )
    return None


def _child(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if type(key) is int else f"{path}.{key}"


def _decode_slow(body: bytes, *, now, earliest, latest, rules: Rules) -> Decoded:
    """One event at a time, with a precise code for each that does not fit."""
    if _is_batch(body.lstrip()):
        try:
            raws = _raw_batch_decoder.decode(body).events
        except msgspec.ValidationError:
            raise BodyError("invalid_body", '"events" must be a list of event objects.') from None
        _check_count(len(raws))
    else:
        raws = [msgspec.Raw(body)]
    out = Decoded(total=len(raws))
    for index, raw in enumerate(raws):
        try:
            event = _event_decoder.decode(raw)
        except msgspec.ValidationError:
            _classify(out, index, raw)
            continue
        _accept_event(out, index, event, now=now, earliest=earliest, latest=latest, rules=rules)
    return out


_FIELD_CODES = {"id": "invalid_id", "customer": "invalid_customer", "type": "invalid_type"}


_UNREADABLE = object()


def _decode_any(raw: msgspec.Raw) -> Any:
    """An event that did not fit its type, decoded for a precise rejection; _UNREADABLE when even
    that fails (invalid UTF-8 or an integer of thousands of digits in its properties)."""
    try:
        return _any_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return _UNREADABLE


def _classify(out: Decoded, index: int, raw: msgspec.Raw) -> None:
    value = _decode_any(raw)
    if value is _UNREADABLE:
        return _reject(out, index, None, "invalid_event", "The event is not valid UTF-8 JSON within range.")
    if not isinstance(value, dict):
        return _reject(out, index, None, "invalid_event", "Each event must be a JSON object.")
    event_id = value.get("id")
    for name in ("id", "customer", "type"):
        if name not in value or value[name] is None:
            return _reject(out, index, event_id, "missing_field", f"'{name}' is required.")
        if not isinstance(value[name], str):
            return _reject(out, index, event_id, _FIELD_CODES[name], f"'{name}' must be a string.")
    if value.get("timestamp") is not None:
        try:
            _datetime_decoder.decode(msgspec.json.encode(value["timestamp"]))
        except msgspec.ValidationError:
            return _reject(
                out,
                index,
                event_id,
                "invalid_timestamp",
                "timestamp must be an RFC 3339 string such as 2026-11-24T18:00:00Z.",
            )
    return _reject(out, index, event_id, "invalid_properties", "properties must be a JSON object.")


def _decode_cloud(body: bytes, *, batch: bool, now, earliest, latest, rules: Rules) -> Decoded:
    # msgspec.ValidationError is a DecodeError: catch it first.
    try:
        structs = _cloud_batch_decoder.decode(body) if batch else [_cloud_decoder.decode(body)]
    except msgspec.ValidationError:
        return _decode_cloud_slow(body, batch=batch, now=now, earliest=earliest, latest=latest, rules=rules)
    except msgspec.DecodeError as exc:
        raise BodyError("malformed_json", f"The body is not valid JSON: {exc}.") from None
    _check_count(len(structs))
    out = Decoded(total=len(structs))
    for index, event in enumerate(structs):
        _accept_cloud(out, index, event, now=now, earliest=earliest, latest=latest, rules=rules)
    return out


def _decode_cloud_slow(body: bytes, *, batch: bool, now, earliest, latest, rules: Rules) -> Decoded:
    # msgspec reports a type error before it notices trailing garbage ("0\x00"): make sure the
    # body is JSON at all before picking it apart.
    _check_json(body)
    if batch:
        try:
            raws = _raw_list_decoder.decode(body)
        except msgspec.ValidationError:
            raise BodyError("invalid_body", "A CloudEvents batch must be a JSON array of events.") from None
        _check_count(len(raws))
    else:
        raws = [msgspec.Raw(body)]
    out = Decoded(total=len(raws))
    for index, raw in enumerate(raws):
        try:
            event = _cloud_decoder.decode(raw)
        except msgspec.ValidationError:
            value = _decode_any(raw)
            if value is _UNREADABLE:
                _reject(out, index, None, "invalid_event", "The event is not valid UTF-8 JSON within range.")
                continue
            if not isinstance(value, dict):
                _reject(out, index, None, "invalid_event", "Each event must be a JSON object.")
                continue
            missing = [n for n in ("specversion", "id", "source", "type", "subject") if value.get(n) is None]
            if missing:
                _reject(out, index, value.get("id"), "missing_field", f"'{missing[0]}' is required.")
            elif any(not isinstance(value[n], str) for n in ("specversion", "id", "source", "type", "subject")):
                _reject(out, index, value.get("id"), "invalid_event", "CloudEvents attributes must be strings.")
            else:
                _reject(out, index, value.get("id"), "invalid_timestamp", "time must be an RFC 3339 string.")
            continue
        _accept_cloud(out, index, event, now=now, earliest=earliest, latest=latest, rules=rules)
    return out


def _accept_event(out: Decoded, index: int, event: EventIn, *, now, earliest, latest, rules: Rules) -> None:
    _accept(
        out,
        index,
        event.id,
        event.customer,
        event.type,
        event.timestamp,
        event.properties,
        now=now,
        earliest=earliest,
        latest=latest,
        rules=rules,
        where="properties",
    )


def _accept_cloud(out: Decoded, index: int, event: CloudEventIn, *, now, earliest, latest, rules: Rules) -> None:
    if event.specversion != "1.0":
        _reject(out, index, event.id, "invalid_specversion", 'specversion must be "1.0".')
        return
    _accept(
        out,
        index,
        event.id,
        event.subject,
        event.type,
        event.time,
        event.data,
        now=now,
        earliest=earliest,
        latest=latest,
        rules=rules,
        where="data",
    )


def encode_landing(events: list[tuple[str, str, str, datetime, msgspec.Raw]]) -> bytes:
    """The landing payload: the accepted events as one JSON array of
    [id, customer, type, timestamp, properties] (properties embedded as received)."""
    return msgspec.json.encode(events)


class LandedEvent(msgspec.Struct, array_like=True):
    id: str
    customer: str
    type: str
    timestamp: datetime
    properties: msgspec.Raw


_landing_decoder = msgspec.json.Decoder(list[LandedEvent])


def decode_landing(payload: bytes) -> list[LandedEvent]:
    return _landing_decoder.decode(payload)
