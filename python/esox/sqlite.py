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

import math
from typing import Any, Literal, Self

from esox._core import SqliteDatabase, SqliteRecorder
from esox.persistence.errors import InfrastructureFactoryError
from esox.persistence.factory import InfrastructureFactory
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from esox.utils import Environment, EnvType, strtobool

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

    def __init__(self, env: Environment | EnvType | None = None) -> None:
        super().__init__(env)
        db_name = self.env.get(self.SQLITE_DBNAME)
        if not db_name:
            keys = ", ".join(self.env.create_keys(self.SQLITE_DBNAME))
            msg = f"SQLite database name not found in environment with keys: {keys}"
            raise InfrastructureFactoryError(msg)
        self.originator_id_type = self._originator_id_type()
        self.create_table = self._create_table()
        self.database = SqliteDatabase(
            db_name,
            lock_timeout=self._lock_timeout(),
            synchronous=self._synchronous(),
        )

    def _lock_timeout(self) -> float:
        value = (self.env.get(self.SQLITE_LOCK_TIMEOUT) or "").strip()
        if not value:
            return self.DEFAULT_LOCK_TIMEOUT
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds >= 0):
            msg = (
                f"Invalid {self.SQLITE_LOCK_TIMEOUT} {value!r}: expected a "
                "non-negative number of seconds (int or float)"
            )
            raise InfrastructureFactoryError(msg)
        return seconds

    def _synchronous(self) -> Synchronous:
        value = (self.env.get(self.SQLITE_SYNCHRONOUS) or "FULL").strip()
        if value.upper() == "FULL":
            return "FULL"
        if value.upper() == "NORMAL":
            return "NORMAL"
        msg = f"Invalid {self.SQLITE_SYNCHRONOUS} {value!r}: expected FULL or NORMAL"
        raise InfrastructureFactoryError(msg)

    def _originator_id_type(self) -> OriginatorIdType:
        value = (self.env.get(self.ORIGINATOR_ID_TYPE) or "uuid").strip()
        if value.lower() == "uuid":
            return "uuid"
        if value.lower() == "text":
            return "text"
        msg = f"Invalid {self.ORIGINATOR_ID_TYPE} {value!r}: expected uuid or text"
        raise InfrastructureFactoryError(msg)

    def _create_table(self) -> bool:
        value = self.env.get(self.CREATE_TABLE) or "yes"
        try:
            return strtobool(value)
        except ValueError:
            msg = f"Invalid {self.CREATE_TABLE} {value!r}: expected yes or no"
            raise InfrastructureFactoryError(msg) from None

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
