"""SQLite persistence (``PERSISTENCE_MODULE=esox.sqlite``).

The recorders are the Rust ``SqliteRecorder`` over one shared
``SqliteDatabase``: WAL mode, ``BEGIN IMMEDIATE`` writes, SQLite I/O with the
GIL released. The tables are laid out as eventsourcing's SQLite module lays
them out, so a database file written by either library opens in the other.

Configuration (each key optionally prefixed with the application's name):
``SQLITE_DBNAME`` (a file path, ``:memory:`` or a ``file:`` URI; required),
``SQLITE_LOCK_TIMEOUT`` (seconds, default 5), ``SQLITE_SYNCHRONOUS``
(``FULL``, the default, or ``NORMAL``), ``ORIGINATOR_ID_TYPE`` (``uuid``, the
default, or ``text``) and ``CREATE_TABLE`` (default yes).
"""

from __future__ import annotations

from typing import Any, Literal, Self, cast

from esox._core import SqliteDatabase, SqliteRecorder
from esox.persistence.errors import InfrastructureFactoryError
from esox.persistence.factory import InfrastructureFactory
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from esox.utils import Environment, EnvType

__all__ = [
    "SQLiteAggregateRecorder",
    "SQLiteApplicationRecorder",
    "SQLiteFactory",
    "SQLiteProcessRecorder",
    "SQLiteTrackingRecorder",
]

OriginatorIdType = Literal["uuid", "text"]
Synchronous = Literal["FULL", "NORMAL"]


class SQLiteAggregateRecorder(SqliteRecorder, AggregateRecorder):
    """Records one kind of aggregate record (snapshots) in a WITHOUT ROWID table.

    ``insert_events`` returns None: the table keeps no notification ids.
    """

    def __new__(
        cls,
        database: str | SqliteDatabase,
        events_table: str = "stored_events",
        *,
        originator_id_type: OriginatorIdType = "uuid",
        create_table: bool = True,
    ) -> Self:
        return super().__new__(
            cls,
            database,
            events_table,
            notifications=False,
            originator_id_type=originator_id_type,
            create_table=create_table,
        )


class SQLiteApplicationRecorder(SqliteRecorder, ApplicationRecorder):
    """Records stored events with notification ids (the table's rowids)."""

    def __new__(
        cls,
        database: str | SqliteDatabase,
        events_table: str = "stored_events",
        *,
        originator_id_type: OriginatorIdType = "uuid",
        create_table: bool = True,
    ) -> Self:
        return super().__new__(
            cls,
            database,
            events_table,
            originator_id_type=originator_id_type,
            create_table=create_table,
        )


class SQLiteTrackingRecorder(SqliteRecorder, TrackingRecorder):
    """Records tracking positions alone (in the ``tracking`` table)."""

    def __new__(
        cls,
        database: str | SqliteDatabase,
        *,
        create_table: bool = True,
    ) -> Self:
        return super().__new__(
            cls, database, None, tracking=True, create_table=create_table
        )


class SQLiteProcessRecorder(SqliteRecorder, ProcessRecorder):
    """Records stored events and a tracking position in one transaction."""

    def __new__(
        cls,
        database: str | SqliteDatabase,
        events_table: str = "stored_events",
        *,
        originator_id_type: OriginatorIdType = "uuid",
        create_table: bool = True,
    ) -> Self:
        return super().__new__(
            cls,
            database,
            events_table,
            tracking=True,
            originator_id_type=originator_id_type,
            create_table=create_table,
        )


class SQLiteFactory(InfrastructureFactory):
    """Builds SQLite recorders that share one database (and its connections)."""

    SQLITE_DBNAME = "SQLITE_DBNAME"
    SQLITE_LOCK_TIMEOUT = "SQLITE_LOCK_TIMEOUT"
    SQLITE_SYNCHRONOUS = "SQLITE_SYNCHRONOUS"
    ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"
    CREATE_TABLE = "CREATE_TABLE"

    DEFAULT_LOCK_TIMEOUT = 5.0
    MAX_LOCK_TIMEOUT = 2_147_483.647
    """SQLite's busy timeout is a C int of milliseconds."""

    def __init__(self, env: Environment | EnvType | None = None) -> None:
        super().__init__(env)
        db_name = self.env.read_path(self.SQLITE_DBNAME)
        if not db_name:
            keys = ", ".join(self.env.create_keys(self.SQLITE_DBNAME))
            msg = f"SQLite database name not found in environment with keys: {keys}"
            raise InfrastructureFactoryError(msg)
        self.originator_id_type: OriginatorIdType = cast(
            OriginatorIdType,
            self.env.read_choice(self.ORIGINATOR_ID_TYPE, "uuid", ("uuid", "text")),
        )
        self.create_table = self.env.read_bool(self.CREATE_TABLE, default=True)
        self.database = SqliteDatabase(
            db_name,
            lock_timeout=self.env.read_duration(
                self.SQLITE_LOCK_TIMEOUT,
                self.DEFAULT_LOCK_TIMEOUT,
                maximum=self.MAX_LOCK_TIMEOUT,
            ),
            synchronous=self.env.read_choice(
                self.SQLITE_SYNCHRONOUS, "FULL", ("FULL", "NORMAL")
            ),
        )

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        """A recorder of one kind of aggregate record, in table ``stored_<purpose>``."""
        return SQLiteAggregateRecorder(
            self.database,
            "stored_" + purpose,
            originator_id_type=self.originator_id_type,
            create_table=self.create_table,
        )

    def application_recorder(self) -> ApplicationRecorder:
        """The recorder of events and notifications (table ``stored_events``)."""
        return SQLiteApplicationRecorder(
            self.database,
            originator_id_type=self.originator_id_type,
            create_table=self.create_table,
        )

    def tracking_recorder(
        self, tracking_recorder_class: type[TrackingRecorder] | None = None
    ) -> TrackingRecorder:
        """A recorder of tracking positions (table ``tracking``)."""
        cls: Any = tracking_recorder_class or SQLiteTrackingRecorder
        if not (isinstance(cls, type) and issubclass(cls, SQLiteTrackingRecorder)):
            msg = f"{cls!r} is not a subclass of SQLiteTrackingRecorder"
            raise InfrastructureFactoryError(msg)
        recorder: TrackingRecorder = cls(self.database, create_table=self.create_table)
        return recorder

    def process_recorder(self) -> ProcessRecorder:
        """The recorder of events and tracking in one transaction."""
        return SQLiteProcessRecorder(
            self.database,
            originator_id_type=self.originator_id_type,
            create_table=self.create_table,
        )

    def close(self) -> None:
        """Close the database's connections (every recorder of this factory)."""
        self.database.close()
