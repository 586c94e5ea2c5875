"""SQLite persistence for eventsourcing applications (``esox.dropin.sqlite``).

Instead of ``eventsourcing.sqlite``: esox's Rust SQLite recorder (WAL,
``BEGIN IMMEDIATE`` writes, SQLite I/O with the GIL released) on the same
tables, so a database file written by either library opens in the other.

Configuration is eventsourcing's (each key optionally prefixed with the
application's name), read and checked by esox's own SQLite module (as the
PostgreSQL drop-in's is by ``esox.postgres``): ``SQLITE_DBNAME`` (required),
``SQLITE_LOCK_TIMEOUT`` (seconds), ``ORIGINATOR_ID_TYPE`` (``uuid`` or ``text``),
``CREATE_TABLE``,
``SINGLE_ROW_TRACKING`` (esox keeps one tracking row per application: ``no``
is refused) and the ``*_RECORDER_TOPIC`` keys; plus esox's
``SQLITE_SYNCHRONOUS`` (``FULL``, the default, or ``NORMAL``).

esox's SQLite is its own copy, inside the Rust extension: SQLite's file locks
are not shared between two copies in one process, so eventsourcing's SQLite
recorders and esox's must never have the same file open in one process at
once (in separate processes, as usual, they may).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from eventsourcing.utils import Environment, EnvType

import esox.persistence.recorders
import esox.sqlite
from esox._core import SqliteDatabase
from esox.dropin.factory import DropinFactory
from esox.dropin.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TableRecorder,
    TrackingRecorder,
)

__all__ = [
    "Factory",
    "SQLiteAggregateRecorder",
    "SQLiteApplicationRecorder",
    "SQLiteFactory",
    "SQLiteProcessRecorder",
    "SQLiteTrackingRecorder",
]

OriginatorIdType = Literal["uuid", "text"]


class _EventsTableRecorder(TableRecorder):
    """What the recorders of an events table share: eventsourcing's
    constructor, over the esox recorder class ``core_class``."""

    core_class: ClassVar[Callable[..., esox.persistence.recorders.Recorder]]

    def __init__(
        self,
        database: SqliteDatabase,
        events_table_name: str = "stored_events",
        *,
        originator_id_type: OriginatorIdType = "uuid",
    ) -> None:
        super().__init__(
            lambda: self.core_class(
                database,
                events_table_name,
                originator_id_type=originator_id_type,
                create_table=False,
            )
        )
        self.database = database
        self.events_table_name = events_table_name


class SQLiteAggregateRecorder(_EventsTableRecorder, AggregateRecorder):
    """Stored events of one kind of aggregate record (snapshots), WITHOUT ROWID."""

    core: esox.sqlite.SQLiteAggregateRecorder
    core_class = esox.sqlite.SQLiteAggregateRecorder


class SQLiteApplicationRecorder(_EventsTableRecorder, ApplicationRecorder):
    """Stored events, numbered as notifications (the table's rowids)."""

    core: esox.sqlite.SQLiteApplicationRecorder
    core_class = esox.sqlite.SQLiteApplicationRecorder


class SQLiteTrackingRecorder(TableRecorder, TrackingRecorder):
    """Tracking positions, in the ``tracking`` table."""

    core: esox.sqlite.SQLiteTrackingRecorder

    def __init__(self, database: SqliteDatabase) -> None:
        super().__init__(
            lambda: esox.sqlite.SQLiteTrackingRecorder(database, create_table=False)
        )
        self.database = database


class SQLiteProcessRecorder(_EventsTableRecorder, ProcessRecorder):
    """Stored events and the tracking position they came from, in one transaction."""

    core: esox.sqlite.SQLiteProcessRecorder
    core_class = esox.sqlite.SQLiteProcessRecorder


class SQLiteFactory(DropinFactory[SQLiteTrackingRecorder]):
    """Builds SQLite recorders that share one database (and its connections)."""

    SQLITE_DBNAME = "SQLITE_DBNAME"
    SQLITE_LOCK_TIMEOUT = "SQLITE_LOCK_TIMEOUT"
    SQLITE_SYNCHRONOUS = "SQLITE_SYNCHRONOUS"
    SQLITE_SINGLE_ROW_TRACKING = DropinFactory.SINGLE_ROW_TRACKING
    ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"

    DEFAULT_LOCK_TIMEOUT = esox.sqlite.SQLiteFactory.DEFAULT_LOCK_TIMEOUT

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.esox_factory = self.esox_factory_of(esox.sqlite.SQLiteFactory)
        self.database = self.esox_factory.database
        self.originator_id_type = self.esox_factory.originator_id_type

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        """A recorder of one kind of aggregate record, in table ``stored_<purpose>``."""
        return self.created(
            SQLiteAggregateRecorder(
                self.database,
                "stored_" + purpose,
                originator_id_type=self.originator_id_type,
            )
        )

    def application_recorder(self) -> ApplicationRecorder:
        """The recorder of events and notifications (table ``stored_events``)."""
        cls = self.recorder_class(
            self.APPLICATION_RECORDER_TOPIC, SQLiteApplicationRecorder
        )
        return self.created(
            cls(self.database, originator_id_type=self.originator_id_type)
        )

    def tracking_recorder(
        self, tracking_recorder_class: type[SQLiteTrackingRecorder] | None = None
    ) -> SQLiteTrackingRecorder:
        """A recorder of tracking positions (table ``tracking``)."""
        cls = self.tracking_class(tracking_recorder_class, SQLiteTrackingRecorder)
        return self.created(cls(self.database))

    def process_recorder(self) -> ProcessRecorder:
        """The recorder of events and tracking in one transaction."""
        cls = self.recorder_class(self.PROCESS_RECORDER_TOPIC, SQLiteProcessRecorder)
        return self.created(
            cls(self.database, originator_id_type=self.originator_id_type)
        )

    def close(self) -> None:
        """Close the database's connections (every recorder of this factory)."""
        self.esox_factory.close()


Factory = SQLiteFactory
"""eventsourcing's name for a module's factory (``esox.dropin.sqlite:Factory``)."""
