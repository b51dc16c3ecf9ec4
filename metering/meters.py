"""What a meter takes from an event: the match (event type and filters), the value and the group.

Everything is evaluated in SQL, by one set of expressions: the drainer aggregates each drain's
staged events with them, the rollup rebuild and check and the usage selectors aggregate raw
events with them, so the figures cannot disagree.

- A property path is a dot path into `properties` ("usage.bytes"). A missing path is null.
- A filter {"property", "operator": "eq", "value"} matches when the property equals the value as
  JSON (numbers by numeric value, so 5 equals 5.0; strings, booleans and null only equal themselves);
  {"operator": "in", "values": [...]} matches when it equals any of them.
- The value of sum, min, max, latest and weighted_sum is the property as a number: a JSON
  number, or a string holding a plain decimal ("12.5"), with at most 15 digits before the point
  and 12 after (VALUE_INTEGER_DIGITS, VALUE_FRACTION_DIGITS), and not negative unless the meter
  allows negative values. Ingestion refuses events whose value breaks these rules
  (`invalid_value`, see value_problem); anything else that reaches storage (missing, null, "abc",
  booleans, 1e30, and values stored before a meter existed or within the ingest cache's few
  seconds) gives no value, and the event does not contribute to those aggregations (count still
  counts it). unique_count counts distinct values as text (ids, emails, …), not only numbers.
- Why those bounds: a value below 10^15 with at most 12 decimals has at most 27 significant
  digits; a period's total over up to 10^12 events stays below 10^27 with 12 decimals (39
  digits), so the pricing engine's exact 50-digit context (core.money.DECIMAL_PRECISION)
  multiplies it exactly by any unit price of up to 11 significant digits, and rollup sums
  (PostgreSQL numeric, no fixed precision) never overflow. 12 decimals is also the finest unit
  price Stripe and our price documents take.
- The group of an event is the list of its group_by properties as text, as PostgreSQL's `#>>`
  prints them: strings bare, numbers in plain notation without exponent (1e3 → "1000", -0.0 →
  "0.0"), true/false, None for missing or null; objects and arrays are "<object>" / "<array>"
  (group by scalars). Kept as canonical JSON in rollups: `["eu","pro"]`; "" without group_by.
- Property paths (value, filters, group_by) are dot paths of [A-Za-z0-9_-] parts: they are the
  only non-parameter text put into SQL, so every path is checked against PATH_PART before use.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from core.errors import DomainError

VALUE_INTEGER_DIGITS = 15
VALUE_FRACTION_DIGITS = 12
# Matched against the property's text (`#>>`): PostgreSQL prints a JSON number in plain notation
# (1e3 → 1000, 1.50 stays 1.50), a string as itself, true/false/objects never match. Python's $
# would also match before a final newline, hence \Z there; PostgreSQL's $ is the true end.
VALUE_SQL = rf"^-?[0-9]{{1,{VALUE_INTEGER_DIGITS}}}(\.[0-9]{{1,{VALUE_FRACTION_DIGITS}}})?$"
VALUE_SQL_NON_NEGATIVE = VALUE_SQL.replace("^-?", "^", 1)
_VALUE = re.compile(VALUE_SQL.replace("$", r"\Z"))
_VALUE_NON_NEGATIVE = re.compile(VALUE_SQL_NON_NEGATIVE.replace("$", r"\Z"))
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
_VALUE_LIMIT = Decimal(10) ** VALUE_INTEGER_DIGITS
_ARRAY_INDEX = re.compile(r"-?[0-9]+")
# Aggregations that take the value as a number (unique_count takes it as text).
NUMERIC_AGGREGATIONS = frozenset({"sum", "min", "max", "latest", "weighted_sum"})
PATH_PART = re.compile(r"[A-Za-z0-9_\-]{1,64}")
MAX_PATH_PARTS = 8


class MeterDefinitionError(DomainError, ValueError):
    """A meter's filters, paths or value rules break the definition rules."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


@dataclass(frozen=True)
class MeterSpec:
    """An immutable, pre-parsed meter for the hot path (the drainer keeps one per meter)."""

    id: int
    code: str
    event_type: str
    aggregation: str
    value_path: tuple[str, ...] | None
    filters: tuple[tuple[tuple[str, ...], tuple[Any, ...]], ...]  # (path, allowed JSON values)
    group_paths: tuple[tuple[str, ...], ...]
    allow_negative: bool = False

    @classmethod
    def from_meter(cls, meter) -> MeterSpec:
        filters = []
        for item in validate_filters(meter.filters):
            allowed = (item["value"],) if item["operator"] == "eq" else tuple(item["values"])
            filters.append((validate_path(item["property"], where="filter"), allowed))
        return cls(
            id=meter.id,
            code=meter.code,
            event_type=meter.event_type,
            aggregation=meter.aggregation,
            value_path=validate_path(meter.value_property, where="value_property") if meter.value_property else None,
            filters=tuple(filters),
            group_paths=tuple(validate_path(p, where="group_by") for p in meter.group_by),
            allow_negative=bool(getattr(meter, "allow_negative", False)),
        )


def validate_path(path: Any, *, where: str) -> tuple[str, ...]:
    if not isinstance(path, str) or not path:
        raise MeterDefinitionError("invalid_property_path", f"{where} must be a dot path such as usage.bytes.")
    parts = tuple(path.split("."))
    if len(parts) > MAX_PATH_PARTS or not all(PATH_PART.fullmatch(part) for part in parts):
        raise MeterDefinitionError(
            "invalid_property_path", f"{where} must be a dot path of letters, digits, '_' or '-' (got {path!r})."
        )
    return parts


def validate_filters(filters: Any) -> list[dict[str, Any]]:
    if not isinstance(filters, list):
        raise MeterDefinitionError("invalid_filters", "filters must be a list of objects.")
    out = []
    for index, item in enumerate(filters):
        where = f"filters[{index}]"
        if not isinstance(item, dict):
            raise MeterDefinitionError("invalid_filters", f"{where} must be an object.")
        validate_path(item.get("property"), where=f"{where}.property")
        operator = item.get("operator")
        if operator == "eq":
            if "value" not in item or isinstance(item["value"], dict | list):
                raise MeterDefinitionError("invalid_filters", f"{where}: 'eq' needs a scalar 'value'.")
            _check_filter_value(item["value"], where=f"{where}.value")
        elif operator == "in":
            values = item.get("values")
            if not isinstance(values, list) or not values or any(isinstance(v, dict | list) for v in values):
                raise MeterDefinitionError("invalid_filters", f"{where}: 'in' needs a non-empty list of scalars.")
            for i, value in enumerate(values):
                _check_filter_value(value, where=f"{where}.values[{i}]")
        else:
            raise MeterDefinitionError("invalid_filters", f"{where}: operator must be 'eq' or 'in'.")
        if set(item) - {"property", "operator", "value", "values"}:
            raise MeterDefinitionError("invalid_filters", f"{where} has unknown keys.")
        out.append(item)
    return out


def _check_filter_value(value: Any, *, where: str) -> None:
    # Every drain casts filter values to jsonb: a NUL would make PostgreSQL refuse every drain of
    # the tenant, and an infinite float (JSON 1e400 read by Python) would be written as null.
    if isinstance(value, str) and "\x00" in value:
        raise MeterDefinitionError("invalid_filters", f"{where} must not contain NUL (\\u0000).")
    if isinstance(value, float) and not math.isfinite(value):
        raise MeterDefinitionError("invalid_filters", f"{where} must be a finite number.")


# --- SQL over metering_event or the drainer's staging table (alias e) ----------------------------


def sql_path(path: tuple[str, ...]) -> str:
    """A PostgreSQL text[] literal for #> / #>>. Checked again here: this is the one place text
    from a meter definition enters SQL."""
    if not path or not all(PATH_PART.fullmatch(part) for part in path):
        raise MeterDefinitionError("invalid_property_path", f"unsafe property path {path!r}")
    return "'{" + ",".join(path) + "}'"


def sql_match(spec: MeterSpec) -> tuple[str, list[Any]]:
    clauses = ["e.event_type = %s"]
    params: list[Any] = [spec.event_type]
    for path, allowed in spec.filters:
        ors = []
        for value in allowed:
            ors.append(f"e.properties #> {sql_path(path)} = %s::jsonb")
            params.append(msgspec.json.encode(value).decode())
        clauses.append("(" + " OR ".join(ors) + ")")
    return " AND ".join(clauses), params


def sql_value(spec: MeterSpec) -> str:
    assert spec.value_path is not None
    p = sql_path(spec.value_path)
    pattern = VALUE_SQL if spec.allow_negative else VALUE_SQL_NON_NEGATIVE
    return f"(CASE WHEN (e.properties #>> {p}) ~ '{pattern}' THEN (e.properties #>> {p})::numeric END)"


def sql_group(spec: MeterSpec) -> list[str]:
    out = []
    for path in spec.group_paths:
        p = sql_path(path)
        out.append(
            f"(CASE jsonb_typeof(e.properties #> {p}) WHEN 'object' THEN '<object>' WHEN 'array' THEN '<array>' "
            f"ELSE e.properties #>> {p} END)"
        )
    return out


def sql_group_key(spec: MeterSpec) -> str:
    """The rollup group key in SQL, the same text group_key_of makes in Python: canonical JSON of
    the group texts (`["eu","pro"]`, `[null]`), '' without group_by."""
    if not spec.group_paths:
        return "''"
    parts = [f"COALESCE(to_json({expr})::text, 'null')" for expr in sql_group(spec)]
    return "('[' || " + " || ',' || ".join(parts) + " || ']')"


# --- the same rules in Python, for ingestion ----------------------------------------------------
# Ingestion checks the value each meter will take from an event before answering, so a value the
# meter cannot count is refused with a code instead of silently giving no value. Matching mirrors
# sql_match (jsonb equality: numbers by value, never a boolean for a number), paths mirror `#>`.

_MISSING = object()


@dataclass(frozen=True)
class ValueRule:
    """What one numeric meter takes from the events it matches (built from a MeterSpec)."""

    meter: str
    value_path: tuple[str, ...]
    filters: tuple[tuple[tuple[str, ...], tuple[Any, ...]], ...]  # allowed values as decoded JSON
    allow_negative: bool

    @classmethod
    def from_spec(cls, spec: MeterSpec) -> ValueRule:
        assert spec.value_path is not None
        exact = msgspec.json.Decoder(float_hook=Decimal)  # the filter's JSON as SQL sees it
        filters = tuple(
            (path, tuple(exact.decode(msgspec.json.encode(value)) for value in allowed))
            for path, allowed in spec.filters
        )
        return cls(spec.code, spec.value_path, filters, spec.allow_negative)


def value_rules_from(specs: Sequence[MeterSpec]) -> dict[str, tuple[ValueRule, ...]]:
    """Event type → the rules of the numeric meters that count it."""
    rules: dict[str, list[ValueRule]] = {}
    for spec in specs:
        if spec.aggregation in NUMERIC_AGGREGATIONS and spec.value_path:
            rules.setdefault(spec.event_type, []).append(ValueRule.from_spec(spec))
    return {event_type: tuple(found) for event_type, found in rules.items()}


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if type(value) is dict:
            value = value.get(part, _MISSING)
            if value is _MISSING:
                return _MISSING
        elif type(value) is list and _ARRAY_INDEX.fullmatch(part):
            index = int(part)  # negative counts from the end, as in PostgreSQL
            if not -len(value) <= index < len(value):
                return _MISSING
            value = value[index]
        else:
            return _MISSING
    return value


def _json_equal(a: Any, b: Any) -> bool:
    if type(a) is bool or type(b) is bool or a is None or b is None:
        return a is b
    if isinstance(a, int | Decimal) and isinstance(b, int | Decimal):
        return a == b
    return type(a) is str and type(b) is str and a == b


def _matches(properties: Any, rule: ValueRule) -> bool:
    for path, allowed in rule.filters:
        found = _at(properties, path)
        if found is _MISSING or not any(_json_equal(found, value) for value in allowed):
            return False
    return True


def value_problem(properties: Any, rules: Sequence[ValueRule], *, where: str = "properties") -> str | None:
    """Why a meter that matches the event cannot count its value, naming the property; None when
    every matching meter can (a missing or null value is no value, as in SQL: not a problem)."""
    for rule in rules:
        if not _matches(properties, rule):
            continue
        value = _at(properties, rule.value_path)
        if value is _MISSING or value is None:
            continue
        name = f"{where}.{'.'.join(rule.value_path)}"
        problem = _value_text_problem(value, rule)
        if problem is not None:
            return f"{name} {problem} (meter {rule.meter})."
    return None


def _value_text_problem(value: Any, rule: ValueRule) -> str | None:
    limits = f"at most {VALUE_INTEGER_DIGITS} digits before the point and {VALUE_FRACTION_DIGITS} after"
    kind = type(value)
    if kind is int or kind is Decimal:
        # By magnitude and exponent, never by printing it (1e999999999 has a billion digits). A
        # Decimal's exponent counts trailing zeros as PostgreSQL prints them (1.50 has 2 decimals).
        magnitude = value.copy_abs() if kind is Decimal else abs(value)
        if magnitude >= _VALUE_LIMIT or (kind is Decimal and value.as_tuple().exponent < -VALUE_FRACTION_DIGITS):
            return f"is out of range: {limits}"
        if value < 0 and not rule.allow_negative:
            return "must not be negative (the meter does not accept negative values)"
        return None
    if kind is not str:
        return 'must be a JSON number or a decimal string such as "12.5"'
    if (_VALUE if rule.allow_negative else _VALUE_NON_NEGATIVE).match(value):
        return None
    if _VALUE.match(value):
        return "must not be negative (the meter does not accept negative values)"
    if _PLAIN_DECIMAL.match(value):
        return f"is out of range: {limits}"
    return 'must be a JSON number or a decimal string such as "12.5" (no exponent, no spaces)'
