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
    "SQLiteDatastore",
    "SQLiteFactory",
    "SQLiteProcessRecorder",
    "SQLiteTrackingRecorder",
]

OriginatorIdType = Literal["uuid", "text"]
Synchronous = Literal["FULL", "NORMAL"]


class SQLiteDatastore:
    """eventsourcing's handle on an SQLite database, for code that builds
    recorders itself: ``SQLiteAggregateRecorder(SQLiteDatastore(":memory:"))``.

    It holds an esox ``SqliteDatabase`` (``.database``) and the id type its
    recorders use; eventsourcing's pool options are accepted and ignored
    (esox's database keeps its own connections).
    """

    def __init__(
        self,
        db_name: str,
        *,
        lock_timeout: float | None = None,
        originator_id_type: OriginatorIdType = "uuid",
        synchronous: Synchronous = "FULL",
        **pool_options: Any,
    ) -> None:
        self.db_name = db_name
        self.originator_id_type: OriginatorIdType = originator_id_type
        self.database = SqliteDatabase(
            db_name,
            lock_timeout=SQLiteFactory.DEFAULT_LOCK_TIMEOUT
            if lock_timeout is None
            else float(lock_timeout),
            synchronous=synchronous,
        )

    def close(self) -> None:
        """Close the database's connections."""
        self.database.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _database(
    database: str | SqliteDatabase | SQLiteDatastore,
    originator_id_type: OriginatorIdType | None,
) -> tuple[str | SqliteDatabase, OriginatorIdType]:
    """The database and id type a recorder is given (a datastore brings both)."""
    if isinstance(database, SQLiteDatastore):
        return database.database, originator_id_type or database.originator_id_type
    return database, originator_id_type or "uuid"


class SQLiteAggregateRecorder(SqliteRecorder, AggregateRecorder):
    """Records one kind of aggregate record (snapshots) in a WITHOUT ROWID table.

    ``insert_events`` returns None: the table keeps no notification ids.
    """

    def __new__(
        cls,
        database: str | SqliteDatabase | SQLiteDatastore,
        events_table: str = "stored_events",
        *,
        originator_id_type: OriginatorIdType | None = None,
        create_table: bool = True,
        events_table_name: str | None = None,
    ) -> Self:
        db, id_type = _database(database, originator_id_type)
        return super().__new__(
            cls,
            db,
            events_table_name or events_table,
            notifications=False,
            originator_id_type=id_type,
            create_table=create_table,
        )


class SQLiteApplicationRecorder(SqliteRecorder, ApplicationRecorder):
    """Records stored events with notification ids (the table's rowids)."""

    def __new__(
        cls,
        database: str | SqliteDatabase | SQLiteDatastore,
        events_table: str = "stored_events",
        *,
        originator_id_type: OriginatorIdType | None = None,
        create_table: bool = True,
        events_table_name: str | None = None,
    ) -> Self:
        db, id_type = _database(database, originator_id_type)
        return super().__new__(
            cls,
            db,
            events_table_name or events_table,
            originator_id_type=id_type,
            create_table=create_table,
        )


class SQLiteTrackingRecorder(SqliteRecorder, TrackingRecorder):
    """Records tracking positions alone (in the ``tracking`` table)."""

    def __new__(
        cls,
        database: str | SqliteDatabase | SQLiteDatastore,
        *,
        create_table: bool = True,
    ) -> Self:
        db, _ = _database(database, None)
        return super().__new__(cls, db, None, tracking=True, create_table=create_table)


class SQLiteProcessRecorder(SqliteRecorder, ProcessRecorder):
    """Records stored events and a tracking position in one transaction."""

    def __new__(
        cls,
        database: str | SqliteDatabase | SQLiteDatastore,
        events_table: str = "stored_events",
        *,
        originator_id_type: OriginatorIdType | None = None,
        create_table: bool = True,
        events_table_name: str | None = None,
    ) -> Self:
        db, id_type = _database(database, originator_id_type)
        return super().__new__(
            cls,
            db,
            events_table_name or events_table,
            tracking=True,
            originator_id_type=id_type,
            create_table=create_table,
        )


class SQLiteFactory(InfrastructureFactory[Any]):
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
        cls = self.tracking_recorder_class(
            tracking_recorder_class, SQLiteTrackingRecorder
        )
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
