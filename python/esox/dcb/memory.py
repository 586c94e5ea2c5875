"""The in-memory DCB recorder (Rust): indexed by type and tag, thread-safe.

Reads look up the positions of a query's tags or types instead of scanning
every event; the append condition is checked and the events appended under
one lock, with the GIL released; subscriptions wait on appends, not by polling.
"""

from __future__ import annotations

from typing import Any, Self

from esox._core import DCBMemoryRecorder
from esox.dcb.api import DCBEvent, DCBQuery, DCBRecorder, DCBSequencedEvent
from esox.dcb.factory import DCBInfrastructureFactory
from esox.dcb.persistence import (
    DCBCursorSubscription,
    NativeDCBReads,
    SimpleDCBReadResponse,
)
from esox.memory import MemoryFactory

__all__ = [
    "InMemoryDCBFactory",
    "InMemoryDCBRecorder",
    "InMemoryDCBSubscription",
    "SimpleDCBReadResponse",
]


class InMemoryDCBRecorder(NativeDCBReads, DCBMemoryRecorder, DCBRecorder):
    """DCB events kept in memory, with positions from 1.

    An append whose condition's ``after`` is beyond the last recorded
    position raises ``ProgrammingError`` (it cannot come from a read of this
    recorder); a failed condition raises ``IntegrityError``; either way
    nothing is recorded.
    """

    def __new__(
        cls,
        event_class: type[Any] = DCBEvent,
        sequenced_event_class: type[Any] = DCBSequencedEvent,
    ) -> Self:
        # The Rust recorder builds events of the classes it is given.
        return super().__new__(
            cls,
            event_class=event_class,
            sequenced_event_class=sequenced_event_class,
        )

    def subscribe(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
    ) -> InMemoryDCBSubscription:
        """The matching events after ``after``, then new ones as they are appended."""
        return InMemoryDCBSubscription(self, query=query, after=after)


class InMemoryDCBSubscription(DCBCursorSubscription[InMemoryDCBRecorder]):
    """Matching events of an in-memory recorder, woken by appends."""


class InMemoryDCBFactory(MemoryFactory, DCBInfrastructureFactory[Any]):
    """DCB infrastructure in memory (``PERSISTENCE_MODULE=esox.memory``)."""

    def dcb_recorder(self) -> DCBRecorder:
        """A new in-memory DCB recorder."""
        return InMemoryDCBRecorder()
