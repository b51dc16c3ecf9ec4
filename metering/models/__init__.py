from metering.models.event import Event, EventId, LandingBatch, Rollup
from metering.models.meter import Aggregation, Meter

__all__ = ["Aggregation", "Event", "EventId", "LandingBatch", "Meter", "Rollup"]
