"""Creating and changing meters. A new meter, or a change to what a meter counts, rebuilds its
rollups from the raw events already stored (in a Celery task, after commit)."""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.audit import Actor, audit_actor
from core.errors import DomainError, domain_error_from_validation
from metering.meters import validate_filters, validate_path
from metering.models import Aggregation, Meter
from metering.selectors.meter import meter_value_rules_forget

# Bounds on what a meter matches (issue 9: a meter with 100,000 filter values was accepted).
# Every value is a jsonb comparison in every drain and usage read of the meter's event type.
MAX_FILTERS = 20
MAX_FILTER_VALUES = 100
MAX_FILTER_VALUE_LENGTH = 255  # characters, like an event's id, customer and type

FIELDS = ("code", "name", "event_type", "aggregation", "value_property", "filters", "group_by", "allow_negative")
_COUNTED = ("event_type", "aggregation", "value_property", "filters", "group_by", "allow_negative")


def meter_validate(meter: Meter) -> None:
    """Every rule a meter must meet, as DomainErrors with stable codes (the API answers 400)."""
    if not isinstance(meter.group_by, list) or len(meter.group_by) > 3:
        raise DomainError("group_by is a list of at most three property paths.", code="too_many_group_by")
    _validate_filter_sizes(meter.filters)
    validate_filters(meter.filters)  # MeterDefinitionError, a DomainError, with its own code
    for path in meter.group_by:
        validate_path(path, where="group_by")
    if meter.value_property:
        validate_path(meter.value_property, where="value_property")
    if meter.aggregation != Aggregation.COUNT and not meter.value_property:
        raise DomainError(f"A {meter.aggregation} meter needs a value_property.", code="value_property_required")
    try:
        meter.full_clean()
    except ValidationError as exc:
        raise domain_error_from_validation(exc, code="invalid_meter") from None


def _validate_filter_sizes(filters: Any) -> None:
    """Counts and lengths (the shape is validate_filters' job, which also runs on stored meters)."""
    if not isinstance(filters, list):
        return
    if len(filters) > MAX_FILTERS:
        raise DomainError(f"A meter has at most {MAX_FILTERS} filters (got {len(filters)}).", code="too_many_filters")
    for index, item in enumerate(filters):
        if not isinstance(item, dict):
            continue
        values = item.get("values") if item.get("operator") == "in" else [item.get("value")]
        if not isinstance(values, list):
            continue
        if len(values) > MAX_FILTER_VALUES:
            raise DomainError(
                f"filters[{index}]: an 'in' filter takes at most {MAX_FILTER_VALUES} values (got {len(values)}).",
                code="too_many_filter_values",
            )
        for i, value in enumerate(values):
            if isinstance(value, str) and len(value) > MAX_FILTER_VALUE_LENGTH:
                where = f"filters[{index}].values[{i}]" if item.get("operator") == "in" else f"filters[{index}].value"
                raise DomainError(
                    f"{where} is longer than {MAX_FILTER_VALUE_LENGTH} characters.", code="filter_value_too_long"
                )


def meter_in_use(meter: Meter) -> bool:
    """Whether any other row (a plan's charge, …) refers to the meter. Asked generically so that
    metering needs no knowledge of the apps above it."""
    for relation in meter._meta.related_objects:
        if relation.related_model.__name__ == "Rollup":
            continue
        accessor = relation.get_accessor_name()
        if getattr(meter, accessor).exists():
            return True
    return False


# metering.tasks.meter_backfill, enqueued by name so that services do not import the tasks that
# wrap them (the tenant-aware app's send_task adds the schema header as .delay does).
BACKFILL_TASK = "metering.meter_backfill"


def _backfill_on_commit(meter_id: int) -> None:
    transaction.on_commit(lambda: current_app.send_task(BACKFILL_TASK, args=[meter_id]))


def _rules_changed() -> None:
    # Now (this process must not keep checking events against the old definition) and after
    # commit (a request between the two may have cached the old one again).
    meter_value_rules_forget()
    transaction.on_commit(meter_value_rules_forget)


def meter_create(*, actor: Actor, **fields: Any) -> Meter:
    meter = Meter(**{k: v for k, v in fields.items() if k in FIELDS})
    meter_validate(meter)
    with audit_actor(actor), transaction.atomic():
        meter.save()
        _backfill_on_commit(meter.id)
        _rules_changed()
    return meter


def meter_update(*, actor: Actor, meter: Meter, **changes: Any) -> Meter:
    with audit_actor(actor), transaction.atomic():
        locked = Meter.objects.select_for_update().get(pk=meter.pk)
        if "aggregation" in changes and changes["aggregation"] != locked.aggregation and meter_in_use(locked):
            raise DomainError("The aggregation of a meter that a plan uses cannot change.", code="meter_in_use")
        counted_changed = any(k in changes and changes[k] != getattr(locked, k) for k in _COUNTED)
        for key, value in changes.items():
            if key in FIELDS:
                setattr(locked, key, value)
        meter_validate(locked)
        locked.save()
        if counted_changed:
            _backfill_on_commit(locked.id)
            _rules_changed()
    return locked


def meter_delete(*, actor: Actor, meter: Meter) -> None:
    with audit_actor(actor), transaction.atomic():
        if meter_in_use(meter):
            raise DomainError("A meter that a plan uses cannot be deleted.", code="meter_in_use")
        meter.delete()
        _rules_changed()
