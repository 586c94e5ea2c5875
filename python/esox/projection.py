"""eventsourcing's module name for projections (they live in ``esox.system``)."""

from esox.system.projection import (
    ApplicationSubscription,
    EventSourcedProjection,
    EventSourcedProjectionRunner,
    Projection,
    ProjectionRunner,
)

__all__ = [
    "ApplicationSubscription",
    "EventSourcedProjection",
    "EventSourcedProjectionRunner",
    "Projection",
    "ProjectionRunner",
]
