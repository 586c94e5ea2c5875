"""The SQLite DCB recorder (Rust), on esox's SQLite database layer.

Tables ``<prefix>_events`` (position, type, data, tags; indexed by type)
and ``<prefix>_tags`` (tag, position): a read looks positions up by tag or
type; an append checks its condition and inserts in one ``BEGIN IMMEDIATE``
transaction, so threads and processes sharing the file take turns and
positions have no gaps. eventsourcing has no SQLite DCB recorder.
"""

from __future__ import annotations

from typing import Any, Self

from esox._core import DCBSqliteRecorder
from esox.dcb.api import DCBEvent, DCBQuery, DCBRecorder, DCBSequencedEvent
from esox.dcb.factory import DCBInfrastructureFactory
from esox.dcb.persistence import (
    DCBCursorSubscription,
    NativeDCBReads,
)
from esox.sqlite import SQLiteFactory

__all__ = ["SQLiteDCBFactory", "SqliteDCBRecorder", "SqliteDCBSubscription"]


class SqliteDCBRecorder(NativeDCBReads, DCBSqliteRecorder, DCBRecorder):
    """DCB events in an SQLite database (a path or a shared ``SqliteDatabase``).

    A failed condition raises ``IntegrityError``; a condition ``after``
    beyond the last recorded position raises ``ProgrammingError``; either
    way nothing is recorded.
    """

    def __new__(
        cls,
        database: Any,
        *,
        event_class: type[Any] = DCBEvent,
        sequenced_event_class: type[Any] = DCBSequencedEvent,
        **kwargs: Any,
    ) -> Self:
        # The Rust recorder builds events of the classes it is given.
        return super().__new__(
            cls,
            database,
            event_class=event_class,
            sequenced_event_class=sequenced_event_class,
            **kwargs,
        )

    def subscribe(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
    ) -> SqliteDCBSubscription:
        """The matching events after ``after``, then new ones as they are
        committed (by this process at once, by others within 50 ms)."""
        return SqliteDCBSubscription(self, query=query, after=after)


class SqliteDCBSubscription(DCBCursorSubscription[SqliteDCBRecorder]):
    """Matching events of an SQLite DCB recorder."""


class SQLiteDCBFactory(SQLiteFactory, DCBInfrastructureFactory[Any]):
    """DCB infrastructure in SQLite (``PERSISTENCE_MODULE=esox.sqlite``):
    ``SQLITE_DBNAME`` and the other SQLite settings as for aggregates; tables
    ``<application name>_events`` and ``<application name>_tags``."""

    def dcb_recorder(self) -> DCBRecorder:
        """The DCB recorder on this factory's database."""
        return SqliteDCBRecorder(
            self.database,
            table_prefix=self.dcb_table_prefix(),
            create_table=self.create_table,
        )
