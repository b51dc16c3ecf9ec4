"""What a meter takes from an event: the match (event type and filters), the value and the group.

Everything is evaluated in SQL, by one set of expressions: the drainer aggregates each drain's
staged events with them, the rollup rebuild and check and the usage selectors aggregate raw
events with them, so the figures cannot disagree.

- A property path is a dot path into `properties` ("usage.bytes"). A missing path is null.
- A filter {"property", "operator": "eq", "value"} matches when the property equals the value as
  JSON (numbers by numeric value, so 5 equals 5.0; strings, booleans and null only equal themselves);
  {"operator": "in", "values": [...]} matches when it equals any of them.
- The value of sum, min, max, latest and weighted_sum is the property as a number: a JSON
  number, or a string holding a plain decimal ("12.5"). Anything else (missing, null, "abc",
  booleans) gives no value, and the event does not contribute to those aggregations (count still
  counts it). unique_count counts distinct values as text (ids, emails, …), not only numbers.
- The group of an event is the list of its group_by properties as text, as PostgreSQL's `#>>`
  prints them: strings bare, numbers in plain notation without exponent (1e3 → "1000", -0.0 →
  "0.0"), true/false, None for missing or null; objects and arrays are "<object>" / "<array>"
  (group by scalars). Kept as canonical JSON in rollups: `["eu","pro"]`; "" without group_by.
- Property paths (value, filters, group_by) are dot paths of [A-Za-z0-9_-] parts: they are the
  only non-parameter text put into SQL, so every path is checked against PATH_PART before use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

PLAIN_DECIMAL_SQL = r"^-?[0-9]+(\.[0-9]+)?$"  # PostgreSQL's $ is the true end of the string
PATH_PART = re.compile(r"[A-Za-z0-9_\-]{1,64}")
MAX_PATH_PARTS = 8


class MeterDefinitionError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


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
        elif operator == "in":
            values = item.get("values")
            if not isinstance(values, list) or not values or any(isinstance(v, dict | list) for v in values):
                raise MeterDefinitionError("invalid_filters", f"{where}: 'in' needs a non-empty list of scalars.")
        else:
            raise MeterDefinitionError("invalid_filters", f"{where}: operator must be 'eq' or 'in'.")
        if set(item) - {"property", "operator", "value", "values"}:
            raise MeterDefinitionError("invalid_filters", f"{where} has unknown keys.")
        out.append(item)
    return out


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
    return (
        f"(CASE WHEN jsonb_typeof(e.properties #> {p}) = 'number' THEN (e.properties #>> {p})::numeric "
        f"WHEN jsonb_typeof(e.properties #> {p}) = 'string' AND (e.properties #>> {p}) ~ '{PLAIN_DECIMAL_SQL}' "
        f"THEN (e.properties #>> {p})::numeric END)"
    )


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
