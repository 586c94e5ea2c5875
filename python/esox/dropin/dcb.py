"""DCB for eventsourcing 9.5 code (``esox.dropin.dcb``).

esox's Rust DCB recorders behind eventsourcing's interface: each is an
``eventsourcing.dcb.api.DCBRecorder``, reads give eventsourcing's
``DCBSequencedEvent`` and ``DCBEvent`` objects, and errors are
eventsourcing's exceptions (``IntegrityError`` for a failed condition).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import eventsourcing.dcb.api as es_dcb

from esox._core import SqliteDatabase
from esox.dcb import memory, postgres, sqlite
from esox.dropin.boundary import EsoxError, reraise
from esox.postgres import PostgresDatastore

__all__ = [
    "DropinDCBRecorder",
    "DropinDCBSubscription",
    "InMemoryDCBRecorder",
    "PostgresDCBRecorder",
    "SqliteDCBRecorder",
]

_CLASSES: dict[str, Any] = {
    "event_class": es_dcb.DCBEvent,
    "sequenced_event_class": es_dcb.DCBSequencedEvent,
}


class DropinDCBRecorder(es_dcb.DCBRecorder):
    """An esox DCB recorder (``core``) with eventsourcing's interface."""

    core: (
        memory.InMemoryDCBRecorder
        | sqlite.SqliteDCBRecorder
        | postgres.PostgresDCBRecorder
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
    ) -> DropinDCBSubscription:
        """The matching events after ``after``, then new ones as they are appended."""
        try:
            return DropinDCBSubscription(self, query=query, after=after)
        except EsoxError as error:
            reraise(error)


class InMemoryDCBRecorder(DropinDCBRecorder):
    """DCB events in memory (esox's Rust recorder), with eventsourcing's classes."""

    def __init__(self) -> None:
        self.core = memory.InMemoryDCBRecorder(**_CLASSES)


class SqliteDCBRecorder(DropinDCBRecorder):
    """DCB events in SQLite (esox's Rust recorder), with eventsourcing's classes."""

    def __init__(
        self, database: SqliteDatabase | str, *, table_prefix: str = "dcb"
    ) -> None:
        try:
            self.core = sqlite.SqliteDCBRecorder(
                database, table_prefix=table_prefix, **_CLASSES
            )
        except EsoxError as error:
            reraise(error)


class PostgresDCBRecorder(DropinDCBRecorder):
    """DCB events in PostgreSQL (esox's recorder, eventsourcing's ``postgres_tt``
    tables), with eventsourcing's classes."""

    core: postgres.PostgresDCBRecorder

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "dcb_events",
    ) -> None:
        self.core = postgres.PostgresDCBRecorder(
            datastore, events_table_name=events_table_name, **_CLASSES
        )

    def create_table(self) -> None:
        """Create the tables, indexes, types and functions that are missing."""
        try:
            self.core.create_table()
        except EsoxError as error:
            reraise(error)


class DropinDCBSubscription(es_dcb.DCBSubscription[DropinDCBRecorder]):
    """A subscription to a drop-in recorder (esox's, woken by appends)."""

    def __init__(
        self,
        recorder: DropinDCBRecorder,
        query: es_dcb.DCBQuery | None = None,
        after: int | None = None,
    ) -> None:
        super().__init__(recorder=recorder, query=query, after=after)
        self._core = recorder.core.subscribe(query, after=after)  # type: ignore[arg-type]

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
