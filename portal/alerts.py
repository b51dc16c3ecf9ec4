"""Alerts (issue 13 flow 4) and usage limits (flow 7): setting them, and evaluating them from the
drain path.

How a crossing is noticed. The drainer tells metering's usage listeners which organizations a
committed drain changed (metering.live); the portal registers `usage_changed` when it loads.
It keeps only organizations that have something to evaluate (one query), then:

- **Limits** (the plan's hard limits, the customer's caps) are evaluated right there, on the
  drainer's thread: one rollup read per limited meter, so the entitlement flips within a drain of
  the crossing event (the seller's product must stop serving a blocked meter within 2 s).
  Events past a limit are still accepted and stored: the limit only changes what the entitlement
  endpoint says.
- **Alerts** need spend, priced by the billing engine (bill_get, as the dashboard), which is too
  slow for the drainer: one `portal.alerts_evaluate` task per organization is queued, coalesced
  by a Redis key (set when queued, deleted when the task starts, so a change after the task read
  the usage queues another). A crossing is seen within one drain plus the task's queue wait, not
  by a poll.

Each threshold fires once per period: the row that records it (`UsageAlertFiring`,
`UsageLimitReached`) has a unique constraint on the period, and only the evaluation that inserts
it sends the webhook and queues the email (outbox, in the same transaction). Emails are keyed per
alert and local day: at most one a day even when a period ends and the next one fires the same
day. A limit is reached when usage is at or past it (the allowance is used up); a hard one
blocks the meter until the period ends, then the next period's evaluation starts from nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from billing.models import (
    LIVE_STATUSES,
    LimitSource,
    Organization,
    PlanUsageLimit,
    Subscription,
    UsageCap,
    UsageLimitReached,
)
from billing.selectors.organization import subscription_current_get
from core.errors import DomainError
from core.models import OutboxMessage
from core.services.outbox import outbox_add, outbox_register
from core.services.webhook_emit import webhook_emit
from dunning.selectors import entitlement_key
from metering.models import Meter
from metering.redisconn import redis_client
from metering.selectors.usage import usage_get
from payments.services.emails import tenant_url
from portal.models import AlertMetric, UsageAlert, UsageAlertFiring
from portal.selectors import Period, _state_of, periods_list, spend_current

logger = logging.getLogger(__name__)

EMAIL_KIND = "portal.usage_email"
EVALUATE_TASK = "portal.alerts_evaluate"
COALESCE_SECONDS = 60  # bounds a lost task: the key expires and the next change queues again
_ZERO = Decimal(0)
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180))


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _current_period(organization: Organization, now: datetime) -> tuple[Subscription | None, Period]:
    subscription = subscription_current_get(organization=organization)
    state = _state_of(subscription)
    return subscription, periods_list(organization=organization, state=state, now=now, count=1)[0]


# --- setting alerts and caps ---------------------------------------------------------------------


def alert_create(
    *,
    organization: Organization,
    user,
    metric: str,
    meter: Meter | None,
    threshold: Decimal | None = None,
    budget: Decimal | None = None,
    percent: Decimal | None = None,
) -> UsageAlert:
    if metric not in AlertMetric.values:
        raise DomainError("Choose usage or spend.", code="invalid_metric", path="metric")
    if metric == AlertMetric.USAGE and meter is None:
        raise DomainError("A usage alert needs a meter.", code="meter_required", path="meter")
    if threshold is None and (budget is None or percent is None):
        raise DomainError("Give a threshold, or a budget and a percent.", code="threshold_required")
    if threshold is not None and (budget is not None or percent is not None):
        raise DomainError("Give a threshold or a budget and percent, not both.", code="threshold_ambiguous")
    for name, value in (("threshold", threshold), ("budget", budget), ("percent", percent)):
        if value is not None and value <= 0:
            raise DomainError(f"The {name} must be more than zero.", code="not_positive", path=name)
    alert = UsageAlert.objects.create(
        organization=organization,
        metric=metric,
        meter=meter if metric == AlertMetric.USAGE else None,
        threshold=threshold,
        budget=budget,
        percent=percent,
        created_by=user,
    )
    # A threshold already behind the usage fires now, not at the next event.
    transaction.on_commit(lambda: _enqueue_quietly(organization.pk))
    return alert


def _enqueue_quietly(organization_id: int) -> None:
    """After a commit: the alert is saved whatever happens here; if the broker is away it is
    evaluated at the organization's next drained event instead."""
    try:
        alerts_evaluate_enqueue(organization_id)
    except Exception:
        logger.warning("alert evaluation not queued", exc_info=True, extra={"organization": organization_id})


def alert_delete(*, organization: Organization, alert_id: int) -> None:
    deleted, _ = UsageAlert.objects.filter(organization=organization, pk=alert_id).delete()
    if not deleted:
        raise DomainError("No such alert.", code="not_found", status_code=404)


def plan_limit_get(*, organization: Organization, meter: Meter) -> Decimal | None:
    subscription = subscription_current_get(organization=organization)
    if subscription is None:
        return None
    return (
        PlanUsageLimit.objects.filter(plan_id=subscription.plan_version.plan_id, meter=meter)
        .values_list("limit", flat=True)
        .first()
    )


def _limits_changed(organization: Organization, meter: Meter) -> None:
    """A cap changed: what it blocked this period is forgotten and evaluated again at once (a
    raised cap unblocks, a lowered one blocks without waiting for the next event)."""
    now = timezone.now()
    UsageLimitReached.objects.filter(
        organization=organization, meter=meter, source=LimitSource.CAP, period_end__gt=now
    ).delete()
    key = entitlement_key(organization.pk)
    cache.delete(key)
    transaction.on_commit(lambda: (cache.delete(key), limits_evaluate(organization_id=organization.pk)))


def plan_limits_raised(plan_id: int, meter_ids: list[int]) -> None:
    """A seller raised or removed a plan's limit (billing.hooks, after the change committed): the
    blocks that limit recorded this period for the plan's organizations are lifted and each is
    evaluated again at once, so one still past the new limit is blocked again (and told so, with
    the new limit)."""
    now = timezone.now()
    on_plan = Subscription.objects.filter(plan_version__plan_id=plan_id, status__in=LIVE_STATUSES).values(
        "organization_id"
    )
    rows = UsageLimitReached.objects.filter(
        source=LimitSource.PLAN, meter_id__in=meter_ids, period_end__gt=now, organization_id__in=on_plan
    )
    organization_ids = sorted(set(rows.values_list("organization_id", flat=True)))
    if not organization_ids:
        return
    rows.delete()
    cache.delete_many([entitlement_key(organization_id) for organization_id in organization_ids])
    for organization_id in organization_ids:
        limits_evaluate(organization_id=organization_id, now=now)


def usage_cap_set(*, organization: Organization, user, meter: Meter, limit: Decimal, hard: bool) -> UsageCap:
    if limit < 0:
        raise DomainError("The cap cannot be negative.", code="not_positive", path="limit")
    plan_limit = plan_limit_get(organization=organization, meter=meter)
    if plan_limit is not None and limit > plan_limit:
        raise DomainError(
            f"Your plan allows at most {plan_limit.normalize():f} a period; a cap can only be lower.",
            code="cap_above_plan_limit",
            path="limit",
        )
    with transaction.atomic():
        cap, _ = UsageCap.objects.update_or_create(
            organization=organization, meter=meter, defaults={"limit": limit, "hard": hard, "created_by": user}
        )
        _limits_changed(organization, meter)
    return cap


def usage_cap_delete(*, organization: Organization, meter_id: int) -> None:
    with transaction.atomic():
        cap = UsageCap.objects.filter(organization=organization, meter_id=meter_id).select_related("meter").first()
        if cap is None:
            raise DomainError("No such cap.", code="not_found", status_code=404)
        cap.delete()
        _limits_changed(organization, cap.meter)


# --- evaluation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    meter: Meter
    limit: Decimal
    hard: bool
    source: str


def limits_effective(*, organization: Organization, subscription: Subscription | None) -> list[Limit]:
    """Per meter and kind, the lowest limit that applies: the plan's (hard) and the customer's cap
    (hard or soft)."""
    found: dict[tuple[int, bool], Limit] = {}
    rows: list[Limit] = []
    if subscription is not None:
        rows += [
            Limit(row.meter, row.limit, True, LimitSource.PLAN)
            for row in PlanUsageLimit.objects.filter(plan_id=subscription.plan_version.plan_id).select_related("meter")
        ]
    rows += [
        Limit(row.meter, row.limit, row.hard, LimitSource.CAP)
        for row in UsageCap.objects.filter(organization=organization).select_related("meter")
    ]
    for row in rows:
        key = (row.meter.pk, row.hard)
        if key not in found or row.limit < found[key].limit:
            found[key] = row
    return list(found.values())


def limits_evaluate(*, organization_id: int, now: datetime | None = None) -> list[UsageLimitReached]:
    """Record the limits this period's usage reached (once per period each), emit
    `usage.limit_reached`, queue the email, and drop the entitlement's cached answer when a hard
    one was reached. Returns the rows this call inserted."""
    now = now or timezone.now()
    organization = Organization.objects.get(pk=organization_id)
    subscription, period = _current_period(organization, now)
    limits = limits_effective(organization=organization, subscription=subscription)
    if not limits:
        return []
    values: dict[int, Decimal] = {}
    inserted: list[UsageLimitReached] = []
    for limit in sorted(limits, key=lambda x: (x.meter.pk, not x.hard)):
        if limit.meter.pk not in values:
            result = usage_get(meter=limit.meter, customer=organization.external_id, start=period.start, end=period.end)
            values[limit.meter.pk] = result.value if result.value is not None else _ZERO
        value = values[limit.meter.pk]
        if value < limit.limit:
            continue
        with transaction.atomic():
            row, created = UsageLimitReached.objects.get_or_create(
                organization=organization,
                meter=limit.meter,
                period_start=period.start,
                hard=limit.hard,
                defaults={
                    "period_end": period.end,
                    "source": limit.source,
                    "limit": limit.limit,
                    "value": value,
                    "reached_at": now,
                },
            )
            if not created:
                continue
            webhook_emit(event_type="usage.limit_reached", payload=limit_payload(row))
            _email_enqueue("limit", row.pk, organization, now)
            if row.hard:
                key = entitlement_key(organization.pk)
                cache.delete(key)
                transaction.on_commit(lambda key=key: cache.delete(key))
        inserted.append(row)
    return inserted


def alerts_evaluate(*, organization_id: int, now: datetime | None = None) -> list[UsageAlertFiring]:
    """Fire this organization's alerts whose threshold this period's usage or spend reached (once
    per period each). Returns the firings this call inserted."""
    now = now or timezone.now()
    alerts = list(UsageAlert.objects.filter(organization_id=organization_id).select_related("meter", "organization"))
    if not alerts:
        return []
    organization = alerts[0].organization
    subscription, period = _current_period(organization, now)
    values: dict[int | None, Decimal | None] = {}
    for alert in alerts:
        key = alert.meter_id if alert.metric == AlertMetric.USAGE else None
        if key in values:
            continue
        if alert.metric == AlertMetric.USAGE:
            result = usage_get(meter=alert.meter, customer=organization.external_id, start=period.start, end=period.end)
            values[key] = result.value if result.value is not None else _ZERO
        elif subscription is not None:  # spend needs a subscription to price
            state = _state_of(subscription)
            spend, _ = spend_current(organization=organization, state=state, period=period, until=min(now, period.end))
            values[key] = None if spend.problem else spend.total
        else:
            values[key] = None
    fired: list[UsageAlertFiring] = []
    for alert in alerts:
        value = values[alert.meter_id if alert.metric == AlertMetric.USAGE else None]
        threshold = alert.threshold_value()
        if value is None or value < threshold:
            continue
        with transaction.atomic():
            firing, created = UsageAlertFiring.objects.get_or_create(
                alert=alert,
                period_start=period.start,
                defaults={"period_end": period.end, "threshold": threshold, "value": value, "fired_at": now},
            )
            if not created:
                continue
            webhook_emit(event_type="usage.threshold_reached", payload=alert_payload(firing))
            _email_enqueue("alert", firing.pk, organization, now, alert_id=alert.pk)
        fired.append(firing)
    return fired


def limit_payload(row: UsageLimitReached) -> dict:
    return {
        "customer": row.organization.external_id,
        "meter": row.meter.code,
        "limit": f"{row.limit.normalize():f}",
        "hard": row.hard,
        "source": row.source,
        "value": f"{row.value.normalize():f}",
        "period_start": _time(row.period_start),
        "period_end": _time(row.period_end),
        "reached_at": _time(row.reached_at),
    }


def alert_payload(firing: UsageAlertFiring) -> dict:
    alert = firing.alert
    spend = alert.metric == AlertMetric.SPEND
    return {
        "customer": alert.organization.external_id,
        "alert": {
            "id": alert.pk,
            "metric": alert.metric,
            "meter": alert.meter.code if alert.meter else None,
            "threshold": None if alert.threshold is None else f"{alert.threshold.normalize():f}",
            "budget": None if alert.budget is None else f"{alert.budget.normalize():f}",
            "percent": None if alert.percent is None else f"{alert.percent.normalize():f}",
        },
        "threshold": f"{firing.threshold.normalize():f}",
        "value": f"{firing.value.normalize():f}",
        "currency": alert.organization.currency if spend else None,
        "period_start": _time(firing.period_start),
        "period_end": _time(firing.period_end),
        "fired_at": _time(firing.fired_at),
    }


# --- from the drain path -------------------------------------------------------------------------


def organizations_watched(customers: set[str]) -> list[tuple[int, bool, bool]]:
    """(organization id, has alerts, has limits) for the organizations among `customers` with
    something to evaluate. One query; organizations with neither cost nothing more."""
    plan_limited = Subscription.objects.filter(
        organization=OuterRef("pk"),
        status__in=LIVE_STATUSES,
        plan_version__plan__usage_limits__isnull=False,
    )
    rows = (
        Organization.objects.filter(external_id__in=customers)
        .annotate(
            has_alerts=Exists(UsageAlert.objects.filter(organization=OuterRef("pk"))),
            has_caps=Exists(UsageCap.objects.filter(organization=OuterRef("pk"))),
            plan_limited=Exists(plan_limited),
        )
        .filter(Q(has_alerts=True) | Q(has_caps=True) | Q(plan_limited=True))
        .values_list("pk", "has_alerts", "has_caps", "plan_limited")
        .order_by("pk")
    )
    return [(pk, alerts, caps or limited) for pk, alerts, caps, limited in rows]


def _coalesce_key(organization_id: int) -> str:
    return f"portal:alerts:{connection.schema_name}:{organization_id}"


def alerts_evaluate_enqueue(organization_id: int) -> bool:
    """Queue one evaluation of the organization's alerts unless one is already waiting."""
    from portal.tasks import alerts_evaluate_task

    key = _coalesce_key(organization_id)
    client = redis_client()
    if not client.set(key, "1", nx=True, ex=COALESCE_SECONDS):
        return False
    try:
        alerts_evaluate_task.delay(organization_id)
    except Exception:
        client.delete(key)
        raise
    return True


def alerts_evaluate_started(organization_id: int) -> None:
    """The task starts: a change from now on queues another evaluation."""
    redis_client().delete(_coalesce_key(organization_id))


def usage_changed(customers: set[str]) -> None:
    """metering's usage listener (registered in PortalConfig.ready)."""
    for organization_id, has_alerts, has_limits in organizations_watched(customers):
        try:
            if has_limits:
                limits_evaluate(organization_id=organization_id)
            if has_alerts:
                alerts_evaluate_enqueue(organization_id)
        except Exception:
            logger.exception("usage alert/limit evaluation failed", extra={"organization": organization_id})


# --- email ---------------------------------------------------------------------------------------


def _email_enqueue(kind: str, row_id: int, organization: Organization, now: datetime, alert_id: int | None = None):
    """In the transaction that recorded the crossing. The key makes it at most one email per
    alert (or meter limit) per local day of the organization."""
    day = now.astimezone(ZoneInfo(organization.timezone or "UTC")).date().isoformat()
    subject = f"alert:{alert_id}" if kind == "alert" else f"limit:{organization.pk}:{row_id}"
    outbox_add(kind=EMAIL_KIND, key=f"usage-email:{subject}:{day}", payload={"kind": kind, "id": row_id})


def usage_email_send(*, kind: str, row_id: int) -> bool:
    """Send one alert or limit email once (marked `emailed_at` by a conditional update); True if
    this call sent it."""
    model = UsageAlertFiring if kind == "alert" else UsageLimitReached
    row = model.objects.filter(pk=row_id).first()
    if row is None or row.emailed_at is not None:
        return False
    if kind == "alert":
        organization = row.alert.organization
        alert = row.alert
        what = "spend" if alert.metric == AlertMetric.SPEND else alert.meter.name
        subject = f"Alert: {what} reached {row.threshold.normalize():f} this period"
    else:
        organization = row.organization
        what = row.meter.name
        subject = f"{'Limit' if row.hard else 'Cap'} reached: {what} ({row.limit.normalize():f} a period)"
    recipient = organization.billing_email
    if not recipient:
        logger.info("usage email not sent: no billing email", extra={"kind": kind, "id": row_id})
        return False
    context = {
        "kind": kind,
        "row": row,
        "what": what,
        "organization": organization,
        "subject": subject,
        "link": tenant_url(reverse("portal:alerts", args=[organization.external_id])),
    }
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("portal/email/usage.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
    )
    message.send(fail_silently=False)
    model.objects.filter(pk=row.pk, emailed_at=None).update(emailed_at=timezone.now())
    return True


def _handle(message: OutboxMessage) -> None:
    usage_email_send(kind=message.payload["kind"], row_id=message.payload["id"])


def usage_emails_register() -> None:
    outbox_register(EMAIL_KIND, handler=_handle, retry_delays=RETRY_DELAYS)
