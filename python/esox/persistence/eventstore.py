"""The event store: domain events in, domain events out, through mapper and recorder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic

from esox._core import Mapper, Recording, recordings
from esox.domain.protocols import TAggregateID
from esox.persistence.recorders import AggregateRecorder

__all__ = ["EventStore", "Events", "Recording"]


class Events(list[Any]):
    """Domain events, as a list that is also its own iterator: eventsourcing's
    ``EventStore.get`` returns an iterator, so code written for it calls
    ``next()`` on the result; esox's callers use it as the list it is."""

    _next = 0

    def __next__(self) -> Any:
        index = self._next
        if index >= len(self):
            raise StopIteration
        self._next = index + 1
        return self[index]


class EventStore(Generic[TAggregateID]):
    """Stores and retrieves the domain events of aggregates."""

    def __init__(self, mapper: Mapper, recorder: AggregateRecorder) -> None:
        self.mapper = mapper
        self.recorder = recorder

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> list[Recording[Any]]:
        """Store events (one atomic batch); return their recordings."""
        stored_events = self.mapper.to_stored_events(domain_events)
        notification_ids = self.recorder.insert_events(stored_events, **kwargs)
        if not notification_ids:
            return []
        return recordings(domain_events, stored_events, notification_ids)

    def get(
        self,
        originator_id: TAggregateID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Events:
        """Retrieve one aggregate's domain events, by version."""
        stored = self.recorder.select_events(
            originator_id, gt=gt, lte=lte, desc=desc, limit=limit
        )
        return Events(self.mapper.to_domain_events(stored))
