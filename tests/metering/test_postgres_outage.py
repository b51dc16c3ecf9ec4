"""PostgreSQL stopped and restarted while events arrive: 503 (retryable, nothing stored) while
it is down, and afterwards every event that got a 202 is stored, exactly once."""

import threading
import time

import msgspec
import pytest
import requests
from django.db import connection
from django_tenants.utils import schema_context

from metering.models import Event
from tests.live import drain_all, embedded_pg_dir, pg_start, pg_stop, web_server

pytestmark = pytest.mark.usefixtures("django_db_setup")


def test_postgres_down_gives_503_and_every_acknowledged_event_survives(committed_tenant, django_db_blocker):
    datadir = embedded_pg_dir()
    if datadir is None:
        pytest.skip("needs the embedded PostgreSQL (the test stops and restarts it)")
    tenant, key = committed_tenant
    host = tenant.get_primary_domain().domain
    results: list[tuple[str, int]] = []
    stop = threading.Event()

    def send(base):
        session = requests.Session()
        headers = {"Host": host, "Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        n = 0
        while not stop.is_set():
            n += 1
            event_id = f"outage-{n}"
            body = msgspec.json.encode({"id": event_id, "customer": "acme", "type": "call"})
            try:
                status = session.post(f"{base}/api/v1/events", data=body, headers=headers, timeout=10).status_code
            except requests.RequestException:
                status = 0
            results.append((event_id, status))
            time.sleep(0.005)

    with web_server() as base:
        sender = threading.Thread(target=send, args=(base,))
        sender.start()
        try:
            time.sleep(1.0)
            pg_stop(datadir)
            time.sleep(1.5)
        finally:
            pg_start(datadir)
        time.sleep(2.0)
        stop.set()
        sender.join()
    connection.close()  # the test's own connection died with the server

    statuses = [status for _, status in results]
    down = [i for i, s in enumerate(statuses) if s == 503]
    assert set(statuses) <= {202, 503}, set(statuses)
    assert down, "no request saw the outage"
    assert statuses[0] == 202 and statuses[-1] == 202  # before and after: accepted again
    acknowledged = {event_id for event_id, status in results if status == 202}
    with django_db_blocker.unblock():
        drain_all()
        with schema_context(tenant.schema_name):
            stored = set(Event.objects.values_list("event_id", flat=True))
    assert acknowledged <= stored
    assert stored <= {event_id for event_id, _ in results}
    assert len(stored) == len(set(stored))
