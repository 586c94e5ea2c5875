"""The in-memory DCB recorder (Rust): indexed by type and tag, thread-safe.

Reads look up the positions of a query's tags or types instead of scanning
every event; the append condition is checked and the events appended under
one lock, with the GIL released; subscriptions wait on appends, not by polling.
"""

from __future__ import annotations

from collections.abc import Iterator

from esox._core import DCBMemoryCursor, DCBMemoryRecorder
from esox.dcb.api import (
    DCBQuery,
    DCBReadResponse,
    DCBRecorder,
    DCBSequencedEvent,
    DCBSubscription,
)

__all__ = [
    "InMemoryDCBRecorder",
    "InMemoryDCBSubscription",
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


class InMemoryDCBRecorder(DCBMemoryRecorder, DCBRecorder):
    """DCB events kept in memory, with positions from 1.

    An append whose condition's ``after`` is beyond the last recorded
    position raises ``ProgrammingError`` (it cannot come from a read of this
    recorder); a failed condition raises ``IntegrityError``; either way
    nothing is recorded.
    """

    def read(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> DCBReadResponse:
        """The events after ``after`` matching ``query``, at most ``limit``."""
        events, head = self.read_events(query, after=after, limit=limit)
        return SimpleDCBReadResponse(iter(events), head)

    def subscribe(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
    ) -> InMemoryDCBSubscription:
        """The matching events after ``after``, then new ones as they are appended."""
        return InMemoryDCBSubscription(self, query=query, after=after)


class InMemoryDCBSubscription(DCBSubscription[InMemoryDCBRecorder]):
    """Matching events of an in-memory recorder; blocks (GIL released) at the
    end until an append or ``stop()``."""

    def __init__(
        self,
        recorder: InMemoryDCBRecorder,
        query: DCBQuery | None = None,
        after: int | None = None,
    ) -> None:
        super().__init__(recorder=recorder, query=query, after=after)
        self._cursor: DCBMemoryCursor = recorder.cursor(query, after=after)
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
