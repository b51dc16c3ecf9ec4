"""Billing periods: exact UTC bounds across month ends, leap years, anchors 29/30/31 and DST."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from billing.periods import (
    anniversary_period_containing,
    anniversary_period_start,
    calendar_period_containing,
)
from tests.helpers import utc


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [
        # anchor 31: clamps to the month's last day, and comes back to 31 (computed from the anchor)
        (utc(2027, 1, 31, 9), [utc(2027, 1, 31, 9), utc(2027, 2, 28, 9), utc(2027, 3, 31, 9), utc(2027, 4, 30, 9)]),
        # leap year
        (utc(2028, 1, 31, 9), [utc(2028, 1, 31, 9), utc(2028, 2, 29, 9), utc(2028, 3, 31, 9), utc(2028, 4, 30, 9)]),
        (utc(2027, 1, 30), [utc(2027, 1, 30), utc(2027, 2, 28), utc(2027, 3, 30), utc(2027, 4, 30)]),
        (utc(2027, 1, 29), [utc(2027, 1, 29), utc(2027, 2, 28), utc(2027, 3, 29), utc(2027, 4, 29)]),
        (utc(2028, 1, 29), [utc(2028, 1, 29), utc(2028, 2, 29), utc(2028, 3, 29), utc(2028, 4, 29)]),
        # a leap day anchor on yearly billing: Feb 28 in common years, Feb 29 again in 2032
    ],
)
def test_monthly_anniversary_starts_clamp_and_return(anchor, expected):
    assert [anniversary_period_start(anchor=anchor, timezone="UTC", interval="month", index=i) for i in range(4)] == (
        expected
    )


def test_yearly_leap_day_anchor():
    anchor = utc(2028, 2, 29, 12)
    starts = [anniversary_period_start(anchor=anchor, timezone="UTC", interval="year", index=i) for i in range(5)]
    assert starts == [
        utc(2028, 2, 29, 12),
        utc(2029, 2, 28, 12),
        utc(2030, 2, 28, 12),
        utc(2031, 2, 28, 12),
        utc(2032, 2, 29, 12),
    ]


def test_period_containing_is_half_open():
    anchor = utc(2027, 1, 31, 9)
    assert anniversary_period_containing(
        anchor=anchor, timezone="UTC", interval="month", instant=utc(2027, 2, 28, 9)
    ) == (utc(2027, 2, 28, 9), utc(2027, 3, 31, 9))  # the start is included
    assert anniversary_period_containing(
        anchor=anchor, timezone="UTC", interval="month", instant=utc(2027, 2, 28, 8, 59, 59)
    ) == (utc(2027, 1, 31, 9), utc(2027, 2, 28, 9))  # the end is not
    assert anniversary_period_containing(
        anchor=anchor, timezone="UTC", interval="quarter", instant=utc(2027, 9, 1)
    ) == (utc(2027, 7, 31, 9), utc(2027, 10, 31, 9))
    with pytest.raises(ValueError):
        anniversary_period_containing(anchor=anchor, timezone="UTC", interval="month", instant=utc(2027, 1, 1))


def test_dst_in_the_organizations_timezone():
    berlin = ZoneInfo("Europe/Berlin")
    # Anchored at local midnight on the 15th: local midnight stays local midnight across DST changes.
    anchor = datetime(2027, 3, 15, 0, 0, tzinfo=berlin)
    march = anniversary_period_containing(
        anchor=anchor, timezone="Europe/Berlin", interval="month", instant=utc(2027, 4, 1)
    )
    assert march == (utc(2027, 3, 14, 23), utc(2027, 4, 14, 22))  # CET → CEST on Mar 28
    assert (march[1] - march[0]).total_seconds() == 31 * 86400 - 3600
    october = calendar_period_containing(instant=utc(2027, 10, 20), timezone="Europe/Berlin", interval="month")
    assert october == (utc(2027, 9, 30, 22), utc(2027, 10, 31, 23))  # CEST → CET on Oct 31
    assert (october[1] - october[0]).total_seconds() == 31 * 86400 + 3600
    # New York, the November change
    assert calendar_period_containing(instant=utc(2026, 11, 24), timezone="America/New_York", interval="month") == (
        utc(2026, 11, 1, 4),
        utc(2026, 12, 1, 5),
    )


def test_calendar_quarters_and_years():
    assert calendar_period_containing(instant=utc(2027, 5, 17), timezone="UTC", interval="quarter") == (
        utc(2027, 4, 1),
        utc(2027, 7, 1),
    )
    assert calendar_period_containing(instant=utc(2028, 2, 29), timezone="UTC", interval="year") == (
        utc(2028, 1, 1),
        utc(2029, 1, 1),
    )
    # just before midnight UTC on Dec 31 is already January in Tokyo
    assert calendar_period_containing(instant=utc(2027, 12, 31, 20), timezone="Asia/Tokyo", interval="month") == (
        utc(2027, 12, 31, 15),
        utc(2028, 1, 31, 15),
    )
