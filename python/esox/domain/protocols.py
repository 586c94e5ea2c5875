"""Protocols of domain events and aggregates, for code that brings its own
classes (pydantic events, immutable aggregates) instead of esox's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable
from uuid import UUID

__all__ = [
    "CanMutateProtocol",
    "CollectEventsProtocol",
    "DomainEventProtocol",
    "ImmutableAggregateProtocol",
    "MutableAggregateProtocol",
    "MutableOrImmutableAggregate",
    "TAggregateID",
    "TMutableOrImmutableAggregate",
]

# The one type of aggregate ids, which every layer imports from here:
# constrained (either a UUID or a str), as the Rust stub's Recording is.
TAggregateID = TypeVar("TAggregateID", UUID, str)
TAggregateID_co = TypeVar("TAggregateID_co", bound=UUID | str, covariant=True)


@runtime_checkable
class DomainEventProtocol(Protocol[TAggregateID_co]):
    """Any object with an ``originator_id`` and an ``originator_version``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    @property
    def originator_id(self) -> TAggregateID_co:
        """The id of the aggregate (or other originator) the event belongs to."""
        ...

    @property
    def originator_version(self) -> int:
        """The position of the event in its originator's sequence."""
        ...


class MutableAggregateProtocol(Protocol[TAggregateID_co]):
    """An aggregate with a read-only id and a settable version."""

    @property
    def id(self) -> TAggregateID_co:
        """The aggregate's id."""
        ...

    @property
    def version(self) -> int:
        """The version of its last event."""
        ...

    @version.setter
    def version(self, value: int) -> None: ...


class ImmutableAggregateProtocol(Protocol[TAggregateID_co]):
    """An aggregate with a read-only id and version (events make new copies)."""

    @property
    def id(self) -> TAggregateID_co:
        """The aggregate's id."""
        ...

    @property
    def version(self) -> int:
        """The version of its last event."""
        ...


MutableOrImmutableAggregate = (
    ImmutableAggregateProtocol[TAggregateID] | MutableAggregateProtocol[TAggregateID]
)

TMutableOrImmutableAggregate = TypeVar(
    "TMutableOrImmutableAggregate", bound=MutableOrImmutableAggregate[Any]
)


@runtime_checkable
class CollectEventsProtocol(Protocol):
    """An aggregate whose new events can be collected for saving."""

    def collect_events(self) -> Sequence[DomainEventProtocol[Any]]:
        """Return and forget the pending events."""
        ...


@runtime_checkable
class CanMutateProtocol(
    DomainEventProtocol[Any], Protocol[TMutableOrImmutableAggregate]
):
    """An event that evolves (or creates) an aggregate."""

    def mutate(
        self, aggregate: TMutableOrImmutableAggregate | None
    ) -> TMutableOrImmutableAggregate | None:
        """Return the aggregate as it is after this event."""
        ...
