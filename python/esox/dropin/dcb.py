"""DCB for eventsourcing 9.5 code (``esox.dropin.dcb``).

esox's in-memory DCB recorder behind eventsourcing's interface: it is an
``eventsourcing.dcb.api.DCBRecorder``, reads give eventsourcing's
``DCBSequencedEvent`` and ``DCBEvent`` objects, and errors are
eventsourcing's exceptions (``IntegrityError`` for a failed condition).
"""

from __future__ import annotations

from collections.abc import Sequence

import eventsourcing.dcb.api as es_dcb

from esox.dcb import memory
from esox.dropin.boundary import EsoxError, reraise

__all__ = ["InMemoryDCBRecorder", "InMemoryDCBSubscription"]


class InMemoryDCBRecorder(es_dcb.DCBRecorder):
    """DCB events in memory (esox's Rust recorder), with eventsourcing's classes."""

    def __init__(self) -> None:
        self.core = memory.InMemoryDCBRecorder(
            event_class=es_dcb.DCBEvent,
            sequenced_event_class=es_dcb.DCBSequencedEvent,
        )

    def read(
        self,
        query: es_dcb.DCBQuery | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> es_dcb.DCBReadResponse:
        """The events after ``after`` matching ``query``, at most ``limit``."""
        try:
            events, head = self.core.read_events(query, after=after, limit=limit)  # type: ignore[arg-type]
        except EsoxError as error:
            reraise(error)
        return _ReadResponse(events, head)  # type: ignore[arg-type]

    def append(
        self,
        events: Sequence[es_dcb.DCBEvent],
        condition: es_dcb.DCBAppendCondition | None = None,
    ) -> int:
        """Records ``events`` unless ``condition`` fails; returns the last position."""
        try:
            return self.core.append(events, condition)  # type: ignore[arg-type]
        except EsoxError as error:
            reraise(error)

    def subscribe(
        self,
        query: es_dcb.DCBQuery | None = None,
        *,
        after: int | None = None,
    ) -> InMemoryDCBSubscription:
        """The matching events after ``after``, then new ones as they are appended."""
        try:
            return InMemoryDCBSubscription(self, query=query, after=after)
        except EsoxError as error:
            reraise(error)


class InMemoryDCBSubscription(es_dcb.DCBSubscription[InMemoryDCBRecorder]):
    """A subscription to the drop-in recorder (esox's, woken by appends)."""

    def __init__(
        self,
        recorder: InMemoryDCBRecorder,
        query: es_dcb.DCBQuery | None = None,
        after: int | None = None,
    ) -> None:
        super().__init__(recorder=recorder, query=query, after=after)
        self._core = memory.InMemoryDCBSubscription(
            recorder.core,
            query=query,  # type: ignore[arg-type]
            after=after,
        )

    def stop(self) -> None:
        """Stops the subscription, waking a ``__next__`` that is waiting."""
        super().stop()
        self._core.stop()

    def __next__(self) -> es_dcb.DCBSequencedEvent:
        event = next(self._core)
        self._last_position = event.position
        return event  # type: ignore[return-value]


class _ReadResponse(es_dcb.DCBReadResponse):
    """The events of a read and its head."""

    def __init__(
        self, events: list[es_dcb.DCBSequencedEvent], head: int | None
    ) -> None:
        self._events = iter(events)
        self._head = head

    @property
    def head(self) -> int | None:
        """The head of the read."""
        return self._head

    def __next__(self) -> es_dcb.DCBSequencedEvent:
        return next(self._events)
