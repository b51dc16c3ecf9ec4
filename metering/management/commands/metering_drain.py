"""The drainer: a long-running process that moves landed batches into the event store.

It wakes on PostgreSQL notifications sent with each landed batch and also sweeps every tenant
every few seconds (a notification sent while no drainer listened is not lost work: the landing
rows stay until drained). Several drainers may run at once (SKIP LOCKED shares the batches).
SIGTERM/SIGINT finish the current transaction and exit; a SIGKILL rolls it back.

After each commit it publishes "usage changed" to the organizations' channel groups, at most once
per second per organization; the portal's consumer computes and pushes the new figures. It also
tells the registered usage listeners (metering.live: the portal's alerts and caps) which
organizations changed.

No data stops it: a drain that fails for a reason in its rows is halved until the failing
batches are alone, and those move to the dead-letter table (metering_landing_dead); a database
outage or any other failure of an iteration is logged and retried a second later. Under honcho
an exception here would stop every process of the platform.
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
from django.db import connection
from django_tenants.utils import get_public_schema_name

from metering.live import live_watched, usage_changed_notify, usage_group_name
from metering.metrics import BACKLOG, BATCH_SECONDS, DRAINED, DUPLICATES, LAG, QUARANTINED
from metering.services.drain import (
    BatchStoreError,
    drain_lag_seconds,
    drain_once,
    landing_error_describe,
    landing_quarantine,
)
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
        self.listener = None
        self.tenants: dict[str, Tenant] = {}
        self.pending: set[str] = set()
        self.next_sweep = self.next_maintain = time.monotonic()
        logger.info("drainer started", extra={"pid": os.getpid()})
        while not self.stopping:
            try:
                self._step()
            except Exception:
                # drain_once isolates bad data; what reaches here is the database being away (or
                # a bug). Exiting would stop every process under honcho: wait, reconnect, go on.
                logger.exception("drainer iteration failed; retrying in 1 s")
                self._disconnect()
                time.sleep(1)
        self._publish(force=True)
        self._disconnect()
        logger.info("drainer stopped", extra={"pid": os.getpid()})

    def _step(self) -> None:
        if self.listener is None:
            self.listener = self._listen()
        now = time.monotonic()
        if now >= self.next_sweep:
            self.next_sweep = now + SWEEP_SECONDS
            self.tenants = {t.schema_name: t for t in self._tenants()}
            self.pending |= set(self.tenants)
            BACKLOG.set(self._backlog(self.tenants.values()))
        if now >= self.next_maintain:
            self.next_maintain = now + MAINTAIN_SECONDS
            for tenant in self.tenants.values():
                connection.set_tenant(tenant)
                try:
                    partitions_maintain()
                except Exception:
                    logger.exception("partition maintenance failed", extra={"tenant": tenant.schema_name})
        for schema in list(self.pending):
            if self.stopping:
                break
            tenant = self.tenants.get(schema)
            if tenant is None or not self._drain_tenant(tenant):
                self.pending.discard(schema)
        self._publish()
        if not self.pending and not self.stopping:
            # Sleep until a batch is landed (or the next sweep / publish is due).
            timeout = min(max(0.0, self.next_sweep - time.monotonic()), PUBLISH_INTERVAL if self.to_publish else 5)
            select.select([self.listener.fileno()], [], [], timeout)
            for notify in self.listener.notifies(timeout=0, stop_after=0):
                self.pending.add(notify.payload)
            if self.pending - set(self.tenants):
                self.tenants = {t.schema_name: t for t in self._tenants()}

    def _disconnect(self) -> None:
        connection.close()
        if self.listener is not None:
            try:
                self.listener.close()
            except Exception:
                logger.debug("closing the listener failed", exc_info=True)
            self.listener = None

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
        except Exception:  # drain_once lets only transient database errors through
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
        if result.customers:
            # Alerts and usage caps (registered by the portal): still on the tenant's connection.
            usage_changed_notify(result.customers)

    def _isolate_bad_batch(self, tenant: Tenant, error: BatchStoreError) -> bool:
        """Some batch of a failed drain cannot be stored. Halve the run and drain each half on its
        own, again and again, until the failing batches are alone (one poisoned batch among 200
        costs 8 more failed drains); those go to the dead-letter table with their error, the rest
        are stored, and the tenant's events keep flowing."""
        if not error.batch_ids:
            # It failed before taking any batch: nothing to blame. Try again at the next sweep.
            logger.error(
                "drain failed before taking a batch",
                extra={"tenant": tenant.schema_name, "error": landing_error_describe(error.cause)},
            )
            time.sleep(1)
            return False
        logger.warning(
            "drain failed; isolating the batch",
            extra={
                "tenant": tenant.schema_name,
                "batches": len(error.batch_ids),
                "error": landing_error_describe(error.cause),
            },
        )
        self._bisect(tenant, error)
        return True

    def _bisect(self, tenant: Tenant, error: BatchStoreError) -> None:
        ids = error.batch_ids
        if len(ids) == 1:
            description = landing_error_describe(error.cause)
            if landing_quarantine(batch_id=ids[0], error=description):
                QUARANTINED.inc()
                logger.error(
                    "landing batch moved to dead letters",
                    extra={"tenant": tenant.schema_name, "batch_id": ids[0], "error": description},
                )
            return
        middle = len(ids) // 2
        for half in (ids[:middle], ids[middle:]):
            try:
                result = drain_once(max_events=self.batch_events, batch_ids=half)
            except BatchStoreError as failed:
                if failed.batch_ids:
                    self._bisect(tenant, failed)
            else:
                if result.batches:
                    self._record(tenant, result)

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
