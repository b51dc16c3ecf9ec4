"""The drainer: a long-running process that moves landed batches into the event store.

It wakes on PostgreSQL notifications sent with each landed batch and also sweeps every tenant
every few seconds (a notification sent while no drainer listened is not lost work: the landing
rows stay until drained). Several drainers may run at once (SKIP LOCKED shares the batches).
SIGTERM/SIGINT finish the current transaction and exit; a SIGKILL rolls it back.

After each commit it publishes "usage changed" to the organizations' channel groups, at most once
per second per organization; the portal's consumer computes and pushes the new figures.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import time

import psycopg
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import OperationalError, connection
from django_tenants.utils import get_public_schema_name

from metering.live import live_watched, usage_group_name
from metering.metrics import BACKLOG, BATCH_SECONDS, DRAINED, DUPLICATES, LAG, QUARANTINED
from metering.services.drain import BatchStoreError, drain_lag_seconds, drain_once, landing_quarantine
from metering.services.landing import NOTIFY_CHANNEL
from metering.services.partitions import partitions_maintain
from tenants.models import Tenant

logger = logging.getLogger("metering.drain")

SWEEP_SECONDS = 5.0
PUBLISH_INTERVAL = 1.0
MAINTAIN_SECONDS = 3600.0


class Command(BaseCommand):
    help = "Run the usage-event drainer (landing → partitioned events + rollups), until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="drain everything waiting, then exit")
        parser.add_argument("--batch-events", type=int, default=settings.DRAIN_BATCH_EVENTS)

    def handle(self, *args, **options):
        self.stopping = False
        self.batch_events = options["batch_events"]
        self.channel_layer = get_channel_layer()
        self.last_published: dict[tuple[str, str], float] = {}
        self.to_publish: set[tuple[str, str]] = set()
        if options["once"]:
            for tenant in self._tenants():
                while self._drain_tenant(tenant) and not self.stopping:
                    pass
            self._publish(force=True)
            return
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self._loop()

    def _stop(self, signum, frame):
        self.stopping = True

    def _tenants(self) -> list[Tenant]:
        connection.set_schema_to_public()
        return list(Tenant.objects.exclude(schema_name=get_public_schema_name()))

    def _listen(self):
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        listener = psycopg.connect(**params, autocommit=True)
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return listener

    def _loop(self) -> None:
        listener = self._listen()
        tenants = {t.schema_name: t for t in self._tenants()}
        pending = set(tenants)
        next_sweep = time.monotonic() + SWEEP_SECONDS
        next_maintain = time.monotonic()
        logger.info("drainer started", extra={"pid": os.getpid(), "tenants": len(tenants)})
        while not self.stopping:
            now = time.monotonic()
            if now >= next_maintain:
                for tenant in tenants.values():
                    connection.set_tenant(tenant)
                    partitions_maintain()
                next_maintain = now + MAINTAIN_SECONDS
            if now >= next_sweep:
                tenants = {t.schema_name: t for t in self._tenants()}
                pending |= set(tenants)
                BACKLOG.set(self._backlog(tenants.values()))
                next_sweep = now + SWEEP_SECONDS
            for schema in list(pending):
                if self.stopping:
                    break
                tenant = tenants.get(schema)
                if tenant is None or not self._drain_tenant(tenant):
                    pending.discard(schema)
            self._publish()
            if not pending and not self.stopping:
                # Sleep until a batch is landed (or the next sweep / publish is due).
                timeout = min(max(0.0, next_sweep - time.monotonic()), PUBLISH_INTERVAL if self.to_publish else 5)
                select.select([listener.fileno()], [], [], timeout)
                for notify in listener.notifies(timeout=0, stop_after=0):
                    pending.add(notify.payload)
                if pending - set(tenants):
                    tenants = {t.schema_name: t for t in self._tenants()}
        self._publish(force=True)
        listener.close()
        logger.info("drainer stopped", extra={"pid": os.getpid()})

    def _backlog(self, tenants) -> int:
        waiting = 0
        for tenant in tenants:
            connection.set_tenant(tenant)
            with connection.cursor() as cursor:
                cursor.execute("SELECT coalesce(sum(event_count), 0) FROM metering_landing")
                waiting += cursor.fetchone()[0]
        return waiting

    def _drain_tenant(self, tenant: Tenant) -> bool:
        """Drain one transaction's worth; True if there may be more."""
        connection.set_tenant(tenant)
        try:
            result = drain_once(max_events=self.batch_events)
        except BatchStoreError as exc:
            return self._isolate_bad_batch(tenant, exc)
        except OperationalError:
            logger.warning("database unavailable; retrying", exc_info=True)
            connection.close()
            time.sleep(1)
            return True
        if result.batches == 0:
            return False
        self._record(tenant, result)
        return True

    def _record(self, tenant: Tenant, result) -> None:
        """Metrics and live-usage publishing for one committed drain."""
        DRAINED.inc(result.inserted)
        DUPLICATES.inc(result.duplicates)
        BATCH_SECONDS.observe(result.seconds)
        LAG.set(drain_lag_seconds(result))
        for customer in result.customers:
            self.to_publish.add((tenant.schema_name, customer))

    def _isolate_bad_batch(self, tenant: Tenant, error: BatchStoreError) -> bool:
        """A batch in the run could not be stored. Retry one batch at a time; the one that fails
        alone goes to the dead-letter table, so the tenant's other events keep flowing."""
        logger.warning("drain refused by the database; isolating the batch", extra={"error": str(error.cause)})
        try:
            result = drain_once(max_events=self.batch_events, max_batches=1)
        except BatchStoreError as single:
            for batch_id in single.batch_ids:
                if landing_quarantine(batch_id=batch_id, error=repr(single.cause)):
                    QUARANTINED.inc()
                    logger.error(
                        "landing batch moved to dead letters",
                        extra={"tenant": tenant.schema_name, "batch_id": batch_id, "error": str(single.cause)},
                    )
            return True
        if result.batches:
            self._record(tenant, result)
        return True

    def _publish(self, *, force: bool = False) -> None:
        if not self.to_publish or self.channel_layer is None:
            return
        now = time.monotonic()
        try:
            watched = {schema: live_watched(schema_name=schema) for schema in {schema for schema, _ in self.to_publish}}
        except Exception:
            logger.warning("live usage presence unavailable", exc_info=True)
            self.to_publish.clear()
            return
        # Nobody is watching the others: nothing to send for them.
        self.to_publish = {(schema, customer) for schema, customer in self.to_publish if customer in watched[schema]}
        sent = set()
        for schema, customer in self.to_publish:
            key = (schema, customer)
            if not force and now - self.last_published.get(key, 0.0) < PUBLISH_INTERVAL:
                continue
            try:
                async_to_sync(self.channel_layer.group_send)(
                    usage_group_name(schema_name=schema, external_id=customer),
                    {"type": "usage.changed", "customer": customer},
                )
            except Exception:
                logger.warning("live usage publish failed", exc_info=True)
            self.last_published[key] = now
            sent.add(key)
        self.to_publish -= sent
