"""Hypothesis-generated bodies never produce a 500, and a refused body stores nothing."""

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metering.models import LandingBatch
from tests.factories import APIKeyFactory
from tests.helpers import bearer

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
field_values = st.one_of(json_values, st.sampled_from(["2026-11-24T10:00:00Z", "", "x" * 300, "2026-13-01"]))
events = st.fixed_dictionaries(
    {},
    optional={
        "id": field_values,
        "customer": field_values,
        "type": field_values,
        "timestamp": field_values,
        "properties": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(msgspec.json.encode),
    events.map(msgspec.json.encode),
    st.lists(events, max_size=5).map(lambda evs: msgspec.json.encode({"events": evs})),
    st.lists(events, max_size=5).map(msgspec.json.encode),
)
content_types = st.sampled_from(
    ["application/json", "application/cloudevents+json", "application/cloudevents-batch+json", "text/plain", ""]
)


@pytest.mark.django_db
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, content_type=content_types)
def test_no_body_produces_a_500(in_a, client_a, body, content_type):
    key = getattr(in_a, "_fuzz_key", None) or APIKeyFactory(scopes=["ingest"]).secret
    in_a._fuzz_key = key
    before = LandingBatch.objects.count()
    response = client_a.post("/api/v1/events", data=body, content_type=content_type, **bearer(key))
    assert response.status_code in {202, 400, 413, 415, 422}, (response.status_code, body, response.content)
    payload = response.json()
    if response.status_code == 202:
        assert LandingBatch.objects.count() == before + 1
        assert payload["accepted"] >= 1
    else:
        assert LandingBatch.objects.count() == before
        assert payload["error"]["code"]
