from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models


class Aggregation(models.TextChoices):
    COUNT = "count", "Count of events"
    SUM = "sum", "Sum of a property"
    MAX = "max", "Maximum of a property"
    MIN = "min", "Minimum of a property"
    UNIQUE_COUNT = "unique_count", "Count of distinct values"
    LATEST = "latest", "Latest value"
    WEIGHTED_SUM = "weighted_sum", "Time-weighted sum"


# Aggregations served from hourly rollups; the others are computed from raw events.
ROLLUP_AGGREGATIONS = frozenset({Aggregation.COUNT, Aggregation.SUM, Aggregation.MAX, Aggregation.MIN})
VALUE_AGGREGATIONS = frozenset(set(Aggregation.values) - {Aggregation.COUNT})

PROPERTY_PATH = RegexValidator(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$", "Use a dot path such as usage.bytes.")


class Meter(models.Model):
    """What is counted from events of one type. `filters` is a list of
    {"property": "<dot path>", "operator": "eq" | "in", "value": …} / {"values": […]}; every filter
    must match. `group_by` names up to three dot paths whose values split the usage."""

    code = models.CharField(max_length=100, unique=True, validators=[RegexValidator(r"^[a-z0-9_.-]+$")])
    name = models.CharField(max_length=200)
    event_type = models.CharField(max_length=255)
    aggregation = models.CharField(max_length=16, choices=Aggregation.choices)
    value_property = models.CharField(max_length=255, blank=True, validators=[PROPERTY_PATH])
    filters = models.JSONField(default=list, blank=True)
    group_by = ArrayField(models.CharField(max_length=255, validators=[PROPERTY_PATH]), default=list, blank=True)
    # Refunds, corrections and gauges that go below zero need it; by default a negative value is
    # refused at ingestion and not counted (a usage charge must never turn into a credit by accident).
    allow_negative = models.BooleanField(
        default=False, help_text="Accept negative values of the value property (refused by default)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        indexes = [models.Index(fields=["event_type"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(aggregation="count") | ~models.Q(value_property=""),
                name="metering_meter_value_property_required",
            ),
            models.CheckConstraint(condition=models.Q(group_by__len__lte=3), name="metering_meter_group_by_at_most_3"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"
