"""The domain model: domain events, aggregates, snapshots (imports nothing of esox
but utils)."""

from esox.domain.aggregate import Aggregate, BaseAggregate, aggregate
from esox.domain.decorators import event, triggers
from esox.domain.events import (
    TZINFO,
    AggregateCreated,
    AggregateEvent,
    CanMutateAggregate,
    DomainEvent,
    EventSourcingError,
    OriginatorIDError,
    OriginatorVersionError,
    ProgrammingError,
    Snapshot,
    datetime_now_with_tzinfo,
)

__all__ = [
    "TZINFO",
    "Aggregate",
    "AggregateCreated",
    "AggregateEvent",
    "BaseAggregate",
    "CanMutateAggregate",
    "DomainEvent",
    "EventSourcingError",
    "OriginatorIDError",
    "OriginatorVersionError",
    "ProgrammingError",
    "Snapshot",
    "aggregate",
    "datetime_now_with_tzinfo",
    "event",
    "triggers",
]
