"""Billing period arithmetic.

Periods are half-open [start, end) in UTC, computed in the organization's timezone from an
immutable anchor. Month arithmetic clamps (python-dateutil's relativedelta): an anchor on the 31st
bills on Feb 28 (29 in leap years) and on Mar 31 again, because every period is computed from the
anchor itself (anchor + n intervals), never from the previous period, so a short month does not
shift later periods.

- Anniversary billing: period n starts at anchor + n intervals (local wall time of the anchor).
- Calendar billing: periods start at local midnight on the 1st (quarters in Jan/Apr/Jul/Oct, years
  on Jan 1); a subscription starting mid-period has a shorter (prorated) first period.

Local wall times are turned into UTC instants with zoneinfo, so a period spanning a DST change is
an hour shorter or longer in UTC. A wall time that does not exist (the spring-forward gap) is read
with the offset before the gap (fold=0), i.e. it lands one hour later in local time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

INTERVAL_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def _local_to_utc(local_naive: datetime, timezone: str) -> datetime:
    return local_naive.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def anniversary_period_start(*, anchor: datetime, timezone: str, interval: str, index: int) -> datetime:
    """Start (UTC) of period `index` (0 = the one starting at the anchor)."""
    local_anchor = anchor.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    return _local_to_utc(local_anchor + relativedelta(months=INTERVAL_MONTHS[interval] * index), timezone)


def anniversary_period_containing(
    *, anchor: datetime, timezone: str, interval: str, instant: datetime
) -> tuple[datetime, datetime]:
    """The anniversary period [start, end) containing `instant` (at or after the anchor)."""
    if instant < anchor:
        raise ValueError("the instant lies before the anchor")
    months = INTERVAL_MONTHS[interval]
    local_anchor = anchor.astimezone(ZoneInfo(timezone))
    local_instant = instant.astimezone(ZoneInfo(timezone))
    # A first guess from calendar months, then step to the right period (at most one step each way).
    index = ((local_instant.year - local_anchor.year) * 12 + local_instant.month - local_anchor.month) // months
    index = max(index, 0)
    while anniversary_period_start(anchor=anchor, timezone=timezone, interval=interval, index=index) > instant:
        index -= 1
    while anniversary_period_start(anchor=anchor, timezone=timezone, interval=interval, index=index + 1) <= instant:
        index += 1
    return (
        anniversary_period_start(anchor=anchor, timezone=timezone, interval=interval, index=index),
        anniversary_period_start(anchor=anchor, timezone=timezone, interval=interval, index=index + 1),
    )


def calendar_period_containing(*, instant: datetime, timezone: str, interval: str) -> tuple[datetime, datetime]:
    """The calendar period (starting on the 1st at midnight in `timezone`) that contains `instant`."""
    months = INTERVAL_MONTHS[interval]
    local = instant.astimezone(ZoneInfo(timezone))
    first_month = ((local.month - 1) // months) * months + 1
    start_local = local.replace(month=first_month, day=1, hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    return _local_to_utc(start_local, timezone), _local_to_utc(start_local + relativedelta(months=months), timezone)
