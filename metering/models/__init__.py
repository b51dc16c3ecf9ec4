from metering.models.event import Event, EventId, LandingBatch, LandingDeadLetter, Rollup
from metering.models.meter import Aggregation, Meter

__all__ = ["Aggregation", "Event", "EventId", "LandingBatch", "LandingDeadLetter", "Meter", "Rollup"]
