from metering.models.event import (
    Event,
    EventCustomer,
    EventId,
    LandingBatch,
    LandingDeadLetter,
    Rollup,
    UnknownCustomerUsage,
)
from metering.models.meter import Aggregation, Meter

__all__ = [
    "Aggregation",
    "Event",
    "EventCustomer",
    "EventId",
    "LandingBatch",
    "LandingDeadLetter",
    "Meter",
    "Rollup",
    "UnknownCustomerUsage",
]
