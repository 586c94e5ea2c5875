"""The domain model: domain events, aggregates, snapshots (imports nothing of esox
but utils)."""

from esox.domain.aggregate import Aggregate, BaseAggregate, MetaAggregate, aggregate
from esox.domain.decorators import event, triggers
from esox.domain.events import (
    TZINFO,
    AggregateCreated,
    AggregateEvent,
    CanCreateTimestamp,
    CanInitAggregate,
    CanMutateAggregate,
    CanSnapshotAggregate,
    DomainEvent,
    EventSourcingError,
    HasOriginatorIDVersion,
    LogEvent,
    MetaDomainEvent,
    OriginatorIDError,
    OriginatorVersionError,
    ProgrammingError,
    Snapshot,
    create_utc_datetime_now,
    datetime_now_with_tzinfo,
)
from esox.domain.protocols import (
    CanMutateProtocol,
    CollectEventsProtocol,
    DomainEventProtocol,
    ImmutableAggregateProtocol,
    MutableAggregateProtocol,
    MutableOrImmutableAggregate,
    TAggregateID,
    TMutableOrImmutableAggregate,
)
from esox.utils import _present_as_package

__all__ = [
    "TZINFO",
    "Aggregate",
    "AggregateCreated",
    "AggregateEvent",
    "BaseAggregate",
    "CanCreateTimestamp",
    "CanInitAggregate",
    "CanMutateAggregate",
    "CanMutateProtocol",
    "CanSnapshotAggregate",
    "CollectEventsProtocol",
    "DomainEvent",
    "DomainEventProtocol",
    "EventSourcingError",
    "HasOriginatorIDVersion",
    "ImmutableAggregateProtocol",
    "LogEvent",
    "MetaAggregate",
    "MetaDomainEvent",
    "MutableAggregateProtocol",
    "MutableOrImmutableAggregate",
    "OriginatorIDError",
    "OriginatorVersionError",
    "ProgrammingError",
    "Snapshot",
    "TAggregateID",
    "TMutableOrImmutableAggregate",
    "aggregate",
    "create_utc_datetime_now",
    "datetime_now_with_tzinfo",
    "event",
    "triggers",
]

_present_as_package(globals())
