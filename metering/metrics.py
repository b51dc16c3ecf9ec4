"""Prometheus metrics of metering, defined once and loaded with the app so every process (web
workers, drainers) exposes the same names; with PROMETHEUS_MULTIPROC_DIR, /metrics adds them up."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_ACCEPTED = Counter("billing_events_accepted_total", "Usage events accepted (durably landed)")
EVENTS_REJECTED = Counter("billing_events_rejected_total", "Usage events rejected", ["code"])
RATE_LIMITED = Counter("billing_ingest_rate_limited_total", "Ingestion requests refused by a rate limit")
RATE_LIMIT_FAILOPEN = Counter("billing_ratelimit_failopen_total", "Rate-limit checks skipped because Redis failed")
DRAINED = Counter("billing_events_drained_total", "Usage events stored by the drainer")
DUPLICATES = Counter("billing_events_duplicates_total", "Duplicate usage events skipped")
QUARANTINED = Counter("billing_drain_quarantined_batches_total", "Landing batches moved to dead letters")
BATCH_SECONDS = Histogram(
    "billing_drain_batch_seconds", "Duration of one drain transaction", buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5)
)
LAG = Gauge("billing_drain_lag_seconds", "Age of the oldest batch in the last drain", multiprocess_mode="max")
BACKLOG = Gauge("billing_drain_backlog_events", "Events waiting in landing tables", multiprocess_mode="max")
# Set by billing's periodic task (billing.tasks.unknown_customers_measure): which customer ids have
# no organization is billing's knowledge; metering only keeps the per-customer tally.
UNKNOWN_CUSTOMERS = Gauge(
    "billing_unknown_customers",
    "Customer ids with stored usage events and no organization",
    ["tenant"],
    multiprocess_mode="mostrecent",
)
UNKNOWN_CUSTOMER_EVENTS = Gauge(
    "billing_unknown_customer_events",
    "Usage events stored for customer ids that have no organization",
    ["tenant"],
    multiprocess_mode="mostrecent",
)
