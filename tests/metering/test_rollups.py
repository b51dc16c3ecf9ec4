from datetime import UTC, datetime, timedelta
from io import StringIO

import msgspec
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from metering.models import Rollup
from metering.services.drain import drain_once
from metering.services.landing import landing_store
from metering.services.meter import meter_create
from metering.services.rollups import rollups_check, rollups_rebuild


def land(events):
    landing_store(
        events=[(i, c, t, ts, msgspec.Raw(msgspec.json.encode(p))) for i, c, t, ts, p in events],
        received_at=datetime.now(UTC),
    )


@pytest.mark.django_db
def test_meter_created_after_events_is_backfilled_and_check_proves_equality(in_a):
    ts = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
    land(
        [
            (f"e{i}", "acme", "upload", ts + timedelta(minutes=20 * i), {"bytes": i, "region": "eu" if i % 2 else "us"})
            for i in range(6)
        ]
    )
    drain_once(max_events=100)
    assert Rollup.objects.count() == 0  # no meter yet

    meter = meter_create(
        actor=None,
        code="eu-bytes",
        name="EU bytes",
        event_type="upload",
        aggregation="sum",
        value_property="bytes",
        filters=[{"property": "region", "operator": "eq", "value": "eu"}],
        group_by=["region"],
    )
    assert rollups_rebuild(meter_ids=[meter.id]) == 2  # 10h and 11h (the Celery task's body)
    rows = {(r.hour.hour, r.group_key): (r.event_count, int(r.value_sum)) for r in Rollup.objects.all()}
    # EU events (odd i) at 10:35, 11:15 and 11:55 with bytes 1, 3 and 5.
    assert rows == {(10, '["eu"]'): (1, 1), (11, '["eu"]'): (2, 3 + 5)}
    assert rollups_check() == []

    # A rollup that disagrees with the raw events is reported, and the command exits non-zero.
    Rollup.objects.filter(hour__hour=11).update(event_count=7)
    mismatches = rollups_check()
    assert [(m.meter, m.stored[0], m.fresh[0]) for m in mismatches] == [("eu-bytes", 7, 2)]
    with pytest.raises(CommandError, match="1 rollup rows differ"):
        call_command("rollups_check", tenant=in_a.slug, stdout=StringIO())
    out = StringIO()
    call_command("rollups_rebuild", tenant=in_a.slug, stdout=out)
    assert "2 rollup rows rebuilt" in out.getvalue()
    assert rollups_check() == []
