"""The domain model: domain events, aggregates, snapshots (imports nothing of esox
but utils)."""

import sys
from types import ModuleType
from typing import Any

from esox.domain import events as _events
from esox.domain.aggregate import Aggregate, BaseAggregate, MetaAggregate, aggregate
from esox.domain.decorators import event, triggers
from esox.domain.events import (
    TZINFO,
    AbstractDecision,
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
    "AbstractDecision",
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


class _DomainModule(ModuleType):
    """``esox.domain`` itself: assigning ``esox.domain.TZINFO`` (as
    eventsourcing's users and tests do) changes the time zone of new event
    timestamps, which ``esox.domain.events`` reads."""

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "TZINFO":
            _events.TZINFO = value


sys.modules[__name__].__class__ = _DomainModule
