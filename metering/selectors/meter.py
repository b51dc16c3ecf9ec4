from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from django.db import connection
from django.db.models import QuerySet

from metering.meters import NUMERIC_AGGREGATIONS, MeterDefinitionError, MeterSpec, ValueRule, value_rules_from
from metering.models import Meter

logger = logging.getLogger(__name__)

# Ingestion checks every event against the tenant's numeric meters; their rules are kept in
# process for a few seconds, like API keys (accounts.selectors.api_key), and forgotten at once by
# the meter services of this process. Another process may check against a definition up to
# RULES_CACHE_SECONDS old; the SQL value rules (metering.meters.sql_value) still hold for what it lets by.
RULES_CACHE_SECONDS = 5.0
_rules: dict[str, tuple[float, Mapping[str, tuple[ValueRule, ...]]]] = {}


def meter_list() -> QuerySet[Meter]:
    return Meter.objects.order_by("name")


def meter_value_rules_get() -> Mapping[str, tuple[ValueRule, ...]]:
    """Event type → the value rules of the current tenant's numeric meters (cached briefly)."""
    schema = connection.schema_name
    now = time.monotonic()
    hit = _rules.get(schema)
    if hit is not None and hit[0] > now:
        return hit[1]
    specs = []
    for meter in Meter.objects.filter(aggregation__in=NUMERIC_AGGREGATIONS).exclude(value_property="").order_by("id"):
        try:
            specs.append(MeterSpec.from_meter(meter))
        except MeterDefinitionError:  # stored before a rule existed: ingestion must not fail on it
            logger.warning("meter with an invalid definition skipped", extra={"meter": meter.code})
    rules = value_rules_from(specs)
    _rules[schema] = (now + RULES_CACHE_SECONDS, rules)
    return rules


def meter_value_rules_forget() -> None:
    _rules.pop(connection.schema_name, None)


def meter_value_rules_cache_clear() -> None:
    _rules.clear()
