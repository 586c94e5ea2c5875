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
    CollectEventsProtocol,
    DomainEventProtocol,
    ImmutableAggregateProtocol,
    MutableAggregateProtocol,
    MutableOrImmutableAggregate,
    TAggregateID,
    TMutableOrImmutableAggregate,
)

__all__ = [
    "TZINFO",
    "Aggregate",
    "AggregateCreated",
    "AggregateEvent",
    "BaseAggregate",
    "CanCreateTimestamp",
    "CanInitAggregate",
    "CanMutateAggregate",
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

# Public classes live in submodules but are named for this package, so their
# topics read "esox.domain:Aggregate" as eventsourcing's read
# "eventsourcing.domain:Aggregate" (old "esox.domain.events:..." topics still
# resolve: the submodules stay).
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("esox.domain."):
        _obj.__module__ = __name__
        for _nested in vars(_obj).values():
            if isinstance(_nested, type) and _nested.__module__.startswith(
                "esox.domain."
            ):
                _nested.__module__ = __name__
del _name, _obj, _nested
