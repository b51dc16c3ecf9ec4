"""Billing period arithmetic: half-open [start, end) in UTC, computed in the organization's
timezone from an immutable anchor, with month arithmetic that clamps (Jan 31 + 1 month = Feb 28/29;
python-dateutil's relativedelta does exactly that)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

INTERVAL_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def calendar_period_containing(*, instant: datetime, timezone: str, interval: str) -> tuple[datetime, datetime]:
    """The calendar period (starting on the 1st at midnight in `timezone`) that contains `instant`."""
    months = INTERVAL_MONTHS[interval]
    local = instant.astimezone(ZoneInfo(timezone))
    first_month = ((local.month - 1) // months) * months + 1
    start_local = local.replace(month=first_month, day=1, hour=0, minute=0, second=0, microsecond=0)
    end_local = start_local + relativedelta(months=months)
    # Re-attach the zone after the arithmetic so a DST change inside the period moves the offset.
    tz = ZoneInfo(timezone)
    start = start_local.replace(tzinfo=None).replace(tzinfo=tz).astimezone(UTC)
    end = end_local.replace(tzinfo=None).replace(tzinfo=tz).astimezone(UTC)
    return start, end
