"""Billing problems: what the run records on a subscription it could not draft or finalize, so the
batch goes on and staff see why (ARCHITECTURE "A batch isolates its failures")."""

from __future__ import annotations

import logging
from datetime import datetime

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

from billing.models import Subscription
from billing.services.subscription import subscription_billing_problem_record
from core.errors import DomainError
from invoicing.metrics import BILLING_FAILURES

logger = logging.getLogger(__name__)

# Failures that are not about one subscription (the database went away, the task ran out of
# time): the run stops and the next one starts from the watermarks, rather than record them on
# every subscription. Anything else is isolated to the subscription that raised it.
NOT_ISOLATED = (OperationalError, InterfaceError, SoftTimeLimitExceeded)
DRAFTING, FINALIZING = "drafting", "finalizing"  # the stages a billing problem is recorded at


def billing_problem_record(subscription: Subscription, *, stage: str, error: Exception, at: datetime) -> None:
    """Record why the run could not bill this (locked) subscription at `stage`: logged, counted
    (billing_run_subscription_failures_total) and kept on the subscription, audited (in the
    caller's transaction)."""
    why = f"{error.code}: {error.message}" if isinstance(error, DomainError) else f"{type(error).__name__}: {error}"
    logger.warning(
        "billing problem", extra={"subscription": subscription.pk, "stage": stage, "problem": why}, exc_info=error
    )
    BILLING_FAILURES.labels(stage=stage).inc()
    subscription_billing_problem_record(subscription=subscription, problem=f"{stage}: {why}", at=at)
