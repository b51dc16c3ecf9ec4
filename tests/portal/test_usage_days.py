"""The dashboard's local days (portal.selectors.usage_with_days): one statement per meter, the
same days as folding the hourly series, in a zone whose offset is not a whole hour."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from metering.models import Meter
from metering.selectors.usage import usage_get
from portal.selectors import _fold, local_days, usage_with_days
from tests.portal.scenario import store_events

KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30: local midnight is half past a UTC hour
START = datetime(2027, 4, 1, tzinfo=KOLKATA).astimezone(UTC)  # 2027-03-31 18:30 UTC
END = START + timedelta(days=3)


def utc(day: int, hour: int, minute: int) -> datetime:
    return datetime(2027, 4, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def meters(in_a):
    common = {"event_type": "call", "group_by": ["region"]}
    out = {
        "count": Meter.objects.create(code="calls", name="Calls", aggregation="count", **common),
        "sum": Meter.objects.create(code="mb", name="MB", aggregation="sum", value_property="mb", **common),
        "max": Meter.objects.create(code="peak", name="Peak", aggregation="max", value_property="mb", **common),
        "unique_count": Meter.objects.create(
            code="users", name="Users", aggregation="unique_count", value_property="user", **common
        ),
    }
    store_events(
        "acme",
        [
            ("e1", utc(1, 18, 10), {"mb": 4, "region": "eu", "user": "a"}),  # 23:40 on the 1st
            ("e2", utc(1, 18, 40), {"mb": 6, "region": "us", "user": "b"}),  # 00:10 on the 2nd
            ("e3", utc(2, 12, 0), {"mb": 1, "region": "eu", "user": "a"}),  # 17:30 on the 2nd
        ],
    )
    return out


def hourly_fold(meter: Meter) -> list:
    """The days as the hourly series folds them (what the dashboard did before)."""
    series = usage_get(meter=meter, customer="acme", start=START, end=END, window="hour").series
    hours = [(p["start"], p["start"] + timedelta(hours=1), p["value"]) for p in series]
    return [
        (day, _fold(meter.aggregation, [h for h in hours if (h[0] >= s or day == START.date()) and h[0] < e]))
        for day, s, e in local_days(START, END, KOLKATA)
    ]


@pytest.mark.django_db
def test_days_of_a_half_hour_zone_in_one_statement_as_the_hours_fold_them(meters):
    days = [datetime(2027, 4, d).date() for d in (1, 2, 3)]
    expected = {
        # the hour 18:00-19:00 UTC holding the 2nd's midnight counts on the 1st, as the rollups cut it
        "count": [Decimal(2), Decimal(1), Decimal(0)],
        "sum": [Decimal(10), Decimal(1), Decimal(0)],
        "max": [Decimal(6), Decimal(1), None],
    }
    for aggregation, values in expected.items():
        with CaptureQueriesContext(connection) as queries:
            result, daily = usage_with_days(
                meter=meters[aggregation], customer="acme", start=START, end=END, zone=KOLKATA, group_by=True
            )
        assert len(queries.captured_queries) == 1, aggregation
        assert daily == list(zip(days, values, strict=True)), aggregation
        assert daily == hourly_fold(meters[aggregation]), aggregation
        assert [g["group"]["region"] for g in result.groups] == ["eu", "us"]
    # a distinct count does not fold: its days are cut at the local midnight itself
    result, daily = usage_with_days(meter=meters["unique_count"], customer="acme", start=START, end=END, zone=KOLKATA)
    assert result.value == Decimal(2)
    assert daily == list(zip(days, [Decimal(1), Decimal(2), Decimal(0)], strict=True))
