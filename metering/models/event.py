"""Storage of usage events. Tables are created by SQL migrations where Django has no words for
them (a partitioned table); these models are the ORM's view of them.

- LandingBatch: one row per accepted request, committed before the 202 (durability).
- EventId: the idempotency ledger. Its primary key is what makes an event count once: the raw
  table is partitioned by event time, and PostgreSQL cannot enforce a unique key across range
  partitions that does not include the partition key, while a repeat may carry another timestamp.
  Ids are kept at least DEDUP_WINDOW after first acceptance.
- Event: raw events, range-partitioned by month on `timestamp`, dropped after the raw retention.
- Rollup: per meter, customer, hour and group, the count / sum / min / max of what was drained.
- EventCustomer: per customer id, how many events were stored and when they arrived.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models.functions import MD5


class NumericField(models.Field):
    """PostgreSQL `numeric` without precision or scale: exact for any value an event carries
    (a bounded column would overflow or round, and a failing drain blocks the tenant's queue)."""

    def db_type(self, connection) -> str:
        return "numeric"

    def to_python(self, value):
        return None if value is None else Decimal(value)


class LandingBatch(models.Model):
    received_at = models.DateTimeField()
    event_count = models.IntegerField()
    payload = models.BinaryField()  # msgspec-encoded list of normalised events

    class Meta:
        db_table = "metering_landing"

    def __str__(self) -> str:
        return f"landing batch {self.pk} ({self.event_count} events)"


class EventId(models.Model):
    event_id = models.CharField(max_length=255, primary_key=True)
    received_at = models.DateTimeField()

    class Meta:
        managed = False  # created in SQL (migration 0002): no varchar_pattern_ops index on the hot path
        db_table = "metering_event_id"

    def __str__(self) -> str:
        return self.event_id


class Event(models.Model):
    # Composite identity in the table; Django needs one primary key column to read rows.
    event_id = models.CharField(max_length=255, primary_key=True)
    customer = models.CharField(max_length=255)
    event_type = models.CharField(max_length=255)
    timestamp = models.DateTimeField()
    properties = models.JSONField()
    received_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "metering_event"

    def __str__(self) -> str:
        return f"{self.event_id} ({self.customer}, {self.event_type})"


class Rollup(models.Model):
    id = models.BigAutoField(primary_key=True)
    meter = models.ForeignKey("metering.Meter", on_delete=models.CASCADE, db_constraint=False)
    customer = models.CharField(max_length=255)
    hour = models.DateTimeField()
    group_key = models.TextField(default="")  # canonical JSON of the group values, "" without group_by
    event_count = models.BigIntegerField()
    value_sum = NumericField(null=True)
    value_min = NumericField(null=True)
    value_max = NumericField(null=True)

    class Meta:
        db_table = "metering_rollup"
        constraints = [
            # On a digest of group_key: three group values of a few hundred characters would make an
            # index entry larger than a btree page allows (2,704 bytes), and PostgreSQL would refuse
            # the drain. The drainer's upsert names the same expression (metering.services.rollups).
            models.UniqueConstraint("meter", "customer", "hour", MD5("group_key"), name="metering_rollup_key"),
        ]
        indexes = [models.Index(fields=["customer", "meter", "hour"], name="metering_rollup_cust_idx")]

    def __str__(self) -> str:
        return f"{self.meter_id}/{self.customer}/{self.hour:%Y-%m-%d %H}h"


class LandingDeadLetter(models.Model):
    """A landed batch the drainer could not store (a database error no retry fixes), moved aside
    so the tenant's other events keep flowing. Kept with the error for inspection and replay."""

    batch_id = models.BigIntegerField()
    received_at = models.DateTimeField()
    event_count = models.IntegerField()
    payload = models.BinaryField()
    error = models.TextField()
    failed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "metering_landing_dead"

    def __str__(self) -> str:
        return f"dead batch {self.batch_id} ({self.event_count} events)"


class EventCustomer(models.Model):
    """Every customer id the drainer stored events for: how many, first and last arrival
    (received_at). Metering knows customers only by the id their events carry, and events may
    come before the organization exists; billing compares these ids with its organizations to
    show usage from unknown customers. Counts are cumulative from when the drainer first kept
    them (raw events dropped after retention are not subtracted)."""

    customer = models.CharField(max_length=255, primary_key=True)
    event_count = models.BigIntegerField()
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        db_table = "metering_customer"

    def __str__(self) -> str:
        return self.customer


class UnknownCustomerUsage(EventCustomer):
    """The admin list "Usage from unknown customers". Which customers are unknown is billing's
    knowledge: its admin registers this model with a queryset of ids no organization has."""

    class Meta:
        proxy = True
        verbose_name = "usage from an unknown customer"
        verbose_name_plural = "usage from unknown customers"
