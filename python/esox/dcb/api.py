"""The DCB API: queries, append conditions, events and the recorder interface.

A dynamic consistency boundary is a query over event types and tags. A
decision reads the events matching its query, then appends new tagged events
on the condition that no event matching a query was recorded after the
position it read up to (the DCB specification at dcb.events). The names,
fields and behaviour are those of ``eventsourcing.dcb.api`` (9.5).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

from esox.persistence.errors import ProgrammingError

__all__ = [
    "DCBAppendCondition",
    "DCBEvent",
    "DCBQuery",
    "DCBQueryItem",
    "DCBReadResponse",
    "DCBRecorder",
    "DCBSequencedEvent",
    "DCBSubscription",
    "TDCBRecorder_co",
]


@dataclass
class DCBQueryItem:
    """Matches an event whose type is one of ``types`` (any type if there are
    none) and whose tags include all of ``tags``."""

    types: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class DCBQuery:
    """Matches an event that matches any of its items (every event if none)."""

    items: list[DCBQueryItem] = field(default_factory=list)


@dataclass
class DCBAppendCondition:
    """Refuse an append if an event matching ``fail_if_events_match`` was
    recorded after position ``after`` (after any position if None)."""

    fail_if_events_match: DCBQuery = field(default_factory=DCBQuery)
    after: int | None = None


@dataclass
class DCBEvent:
    """An event to record: its type, its data and the tags it is found by."""

    type: str
    data: bytes
    tags: list[str] = field(default_factory=list)


@dataclass
class DCBSequencedEvent:
    """A recorded event with its position (positions start at 1)."""

    event: DCBEvent
    position: int


class DCBReadResponse(Iterator[DCBSequencedEvent], ABC):
    """The events of a read, in ascending position, and the read's head."""

    @property
    @abstractmethod
    def head(self) -> int | None:
        """The last recorded position, or with a limit the position of the
        last event read; None if there is none. Use it as a condition's ``after``."""

    @abstractmethod
    def __next__(self) -> DCBSequencedEvent:
        """The next event read."""


class DCBRecorder(ABC):
    """Records DCB events and reads them by query."""

    @abstractmethod
    def read(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> DCBReadResponse:
        """The events after position ``after`` (all if None) that match ``query``
        (all if None or it has no items), ascending, at most ``limit``."""

    @abstractmethod
    def append(
        self, events: Sequence[DCBEvent], condition: DCBAppendCondition | None = None
    ) -> int:
        """Records ``events`` unless ``condition`` fails (then raises
        ``IntegrityError`` and records nothing); returns the last position."""

    @abstractmethod
    def subscribe(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
    ) -> DCBSubscription[Self]:
        """The events after ``after`` matching ``query``, as ``read`` finds them,
        then each new matching event as it is recorded (blocking until then)."""


TDCBRecorder_co = TypeVar("TDCBRecorder_co", bound=DCBRecorder, covariant=True)


class DCBSubscription(Iterator[DCBSequencedEvent], Generic[TDCBRecorder_co]):
    """An iterator over recorded and future matching events; a context
    manager that stops it on exit. ``__next__`` blocks until an event is
    recorded or the subscription is stopped (then it raises StopIteration)."""

    def __init__(
        self,
        recorder: TDCBRecorder_co,
        query: DCBQuery | None = None,
        after: int | None = None,
    ) -> None:
        self._recorder = recorder
        self._query = query
        self._has_been_entered = False
        self._has_been_stopped = False
        self._last_position: int = after or 0

    def __enter__(self) -> Self:
        if self._has_been_entered:
            msg = "Already entered subscription context manager"
            raise ProgrammingError(msg)
        self._has_been_entered = True
        return self

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        if not self._has_been_entered:
            msg = "Not already entered subscription context manager"
            raise ProgrammingError(msg)
        self.stop()

    def stop(self) -> None:
        """Stops the subscription: a waiting or later ``__next__`` ends iterating."""
        self._has_been_stopped = True

    def __iter__(self) -> Self:
        return self

    @abstractmethod
    def __next__(self) -> DCBSequencedEvent:
        """The next matching event, waiting for one to be recorded."""
