"""The repository: aggregates reconstructed from their snapshots and events."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar
from uuid import UUID

from esox.domain import EventSourcingError
from esox.persistence import EventStore

__all__ = ["AggregateNotFoundError", "Repository", "project_aggregate"]

TAggregateID = TypeVar("TAggregateID", UUID, str)


class AggregateNotFoundError(EventSourcingError):
    """No events (at or below the requested version) for that aggregate id."""


def project_aggregate(aggregate: Any, events: Iterable[Any]) -> Any:
    """Apply events in order to an aggregate (or to None, for the first event)."""
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


ProjectorFunction = Callable[[Any, Iterable[Any]], Any]


class Repository(Generic[TAggregateID]):
    """Gets aggregates: latest snapshot at or below the version, then the events."""

    def __init__(
        self,
        event_store: EventStore[TAggregateID],
        *,
        snapshot_store: EventStore[TAggregateID] | None = None,
    ) -> None:
        self.event_store: EventStore[TAggregateID] = event_store
        self.snapshot_store: EventStore[TAggregateID] | None = snapshot_store

    def get(
        self,
        aggregate_id: TAggregateID,
        *,
        version: int | None = None,
        projector_func: ProjectorFunction = project_aggregate,
    ) -> Any:
        """Reconstruct an aggregate, at ``version`` if given (else the latest)."""
        gt: int | None = None
        initial: Any = None
        if self.snapshot_store is not None:
            snapshots = self.snapshot_store.get(
                aggregate_id, desc=True, limit=1, lte=version
            )
            if snapshots:
                initial = snapshots[0].mutate(None)
                gt = snapshots[0].originator_version
        events = self.event_store.get(aggregate_id, gt=gt, lte=version)
        aggregate = projector_func(initial, events)
        if aggregate is None:
            msg = f"Aggregate {aggregate_id!r} version {version!r} not found."
            raise AggregateNotFoundError(msg)
        return aggregate

    def __contains__(self, aggregate_id: TAggregateID) -> bool:
        try:
            self.get(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True
