"""The DCB persistence layer, with the names of ``eventsourcing.dcb.persistence``:
mapper, event store and infrastructure factory (defined in ``esox.dcb.mapper``,
``esox.dcb.eventstore`` and ``esox.dcb.factory``), and what esox's DCB
recorders share: the read response and the subscription driven by a Rust
cursor (which waits with the GIL released)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, cast

from esox.dcb.api import (
    DCBQuery,
    DCBReadResponse,
    DCBSequencedEvent,
    DCBSubscription,
    TDCBRecorder_co,
)
from esox.dcb.eventstore import DCBEventStore, DCBEventStoreReadResponse, NotFoundError
from esox.dcb.factory import DCBInfrastructureFactory
from esox.dcb.mapper import DCBMapper, JSONDCBMapper

__all__ = [
    "DCBCursor",
    "DCBCursorSubscription",
    "DCBEventStore",
    "DCBEventStoreReadResponse",
    "DCBInfrastructureFactory",
    "DCBMapper",
    "JSONDCBMapper",
    "NativeDCBReads",
    "NotFoundError",
    "SimpleDCBReadResponse",
]


class SimpleDCBReadResponse(DCBReadResponse):
    """The events of a read, already taken from the recorder, and its head."""

    def __init__(
        self, events: Iterator[DCBSequencedEvent], head: int | None = None
    ) -> None:
        self.events = events
        self._head_was_given = head is not None
        self._head = head

    @property
    def head(self) -> int | None:
        """The head of the read (see ``DCBReadResponse.head``)."""
        return self._head

    def __next__(self) -> DCBSequencedEvent:
        event = next(self.events)
        if not self._head_was_given:
            self._head = event.position
        return event


class DCBCursor(Protocol):
    """A Rust recorder's cursor: batches of matching events, waiting for one."""

    def next_batch(self, limit: int = 500) -> list[DCBSequencedEvent]:
        """The next events; blocks until there is one; empty once stopped."""

    def stop(self) -> None:
        """Wakes a waiting ``next_batch``, which then returns an empty list."""


class _OpensCursors(Protocol):
    def cursor(
        self, query: DCBQuery | None = None, *, after: int | None = None
    ) -> DCBCursor: ...


class DCBCursorSubscription(DCBSubscription[TDCBRecorder_co]):
    """A subscription that takes events from the cursor its recorder (a Rust
    recorder, which has ``cursor()``) opens; blocks (GIL released) at the end
    until an append or ``stop()``."""

    def __init__(
        self,
        recorder: TDCBRecorder_co,
        query: DCBQuery | None = None,
        after: int | None = None,
    ) -> None:
        super().__init__(recorder=recorder, query=query, after=after)
        self._cursor = cast(_OpensCursors, recorder).cursor(query, after=after)
        self._events: list[DCBSequencedEvent] = []
        self._index = 0

    def stop(self) -> None:
        """Stops the subscription, waking a ``__next__`` that is waiting."""
        super().stop()
        self._cursor.stop()

    def __next__(self) -> DCBSequencedEvent:
        if self._index == len(self._events) and not self._has_been_stopped:
            self._events = self._cursor.next_batch()
            self._index = 0
        if self._has_been_stopped:
            raise StopIteration
        event = self._events[self._index]
        self._index += 1
        self._last_position = event.position
        return event


class _ReadsEvents(Protocol):
    def read_events(
        self,
        query: Any = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> tuple[list[DCBSequencedEvent], int | None]: ...


class NativeDCBReads:
    """``read`` for a recorder whose Rust base has ``read_events`` (the
    events and the head, read together)."""

    def read(
        self: _ReadsEvents,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> DCBReadResponse:
        """The events after ``after`` matching ``query``, at most ``limit``."""
        events, head = self.read_events(query, after=after, limit=limit)
        return SimpleDCBReadResponse(iter(events), head)
