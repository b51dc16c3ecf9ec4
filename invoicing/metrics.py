"""Prometheus metrics of invoicing, defined once and loaded with the app (InvoicingConfig.ready) so
every process exposes the same names; with PROMETHEUS_MULTIPROC_DIR, /metrics adds them up."""

from prometheus_client import Counter

# One per subscription a billing run could not bill (`stage`: "draft", making its drafts at due
# bill points; "finalize", finalizing them): each is also recorded as the subscription's billing
# problem, and the run goes on with the others.
BILLING_FAILURES = Counter(
    "billing_run_subscription_failures_total", "Subscriptions a billing run could not bill", ["stage"]
)
