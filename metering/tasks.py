"""Celery tasks of metering: thin, idempotent wrappers (the tenant travels in the task headers)."""

from celery import shared_task

from metering.services.meter import BACKFILL_TASK
from metering.services.partitions import event_ids_prune, partitions_maintain
from metering.services.rollups import rollups_rebuild


@shared_task(name=BACKFILL_TASK, acks_late=True, time_limit=3600, soft_time_limit=3500)
def meter_backfill(meter_id: int) -> int:
    """Rebuild one meter's rollups from raw events (idempotent: a rebuild replaces them)."""
    return rollups_rebuild(meter_ids=[meter_id])


@shared_task(name="metering.storage_maintain", acks_late=True, time_limit=1800)
def storage_maintain() -> dict:
    """Partitions ahead, partitions past retention dropped, event ids past the dedup window pruned."""
    done = partitions_maintain()
    done["event_ids_pruned"] = event_ids_prune()
    return done
