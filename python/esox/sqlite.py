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

import inspect
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, ClassVar, Literal, Self, cast

from esox._core import SqliteCursor, SqliteDatabase, SqliteRecorder, SqliteRow
from esox.persistence import errors
from esox.persistence.errors import (
    InfrastructureFactoryError,
    InvalidSettingError,
    NotSupportedError,
)
from esox.persistence.factory import InfrastructureFactory
from esox.persistence.pool import Connection, ConnectionPool, Cursor
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    Recorder,
    TrackingRecorder,
)
from esox.utils import Environment, EnvType

__all__ = [
    "SQLiteAggregateRecorder",
    "SQLiteApplicationRecorder",
    "SQLiteConnection",
    "SQLiteConnectionPool",
    "SQLiteCursor",
    "SQLiteDatastore",
    "SQLiteFactory",
    "SQLiteProcessRecorder",
    "SQLiteRecorder",
    "SQLiteRow",
    "SQLiteTrackingRecorder",
    "SQLiteTransaction",
]

OriginatorIdType = Literal["uuid", "text"]
Synchronous = Literal["FULL", "NORMAL"]

SQLiteCursor = SqliteCursor
"""A cursor in a transaction on the recorders' own connection (Rust):
``execute``, ``executemany``, ``fetchall``, ``fetchone``, ``lastrowid``."""

SQLiteRow = SqliteRow
"""A row, indexable by position and by column name (like sqlite3.Row)."""

# sqlite3's exceptions and esox's, most specific first.
_SQLITE3_ERRORS: tuple[tuple[type[Exception], type[errors.PersistenceError]], ...] = (
    (sqlite3.InterfaceError, errors.InterfaceError),
    (sqlite3.DataError, errors.DataError),
    (sqlite3.OperationalError, errors.OperationalError),
    (sqlite3.IntegrityError, errors.IntegrityError),
    (sqlite3.InternalError, errors.InternalError),
    (sqlite3.ProgrammingError, errors.ProgrammingError),
    (sqlite3.NotSupportedError, errors.NotSupportedError),
    (sqlite3.DatabaseError, errors.DatabaseError),
    (sqlite3.Error, errors.PersistenceError),
)


def _esox_error(error: BaseException) -> BaseException:
    """esox's persistence error for an sqlite3 error (others as they are)."""
    for sqlite3_class, esox_class in _SQLITE3_ERRORS:
        if isinstance(error, sqlite3_class):
            converted = esox_class(error)
            converted.__cause__ = error
            return converted
    return error


# The Rust cursor is one (structurally); registered so isinstance() agrees.
Cursor.register(SqliteCursor)


class SQLiteConnection(Connection[Any]):
    """A pooled handle on an SQLite database's connections (the Rust ones
    the recorders use), in one transaction at a time."""

    def __init__(self, database: SqliteDatabase, max_age: float | None = None) -> None:
        super().__init__(max_age=max_age)
        self.database = database
        self._transaction: SqliteCursor | None = None

    def begin(self, *, commit: bool) -> SqliteCursor:
        """A cursor in a new transaction (a write transaction if commit=True)."""
        if self._transaction is not None and not self._transaction.finished:
            msg = "this connection is already in a transaction"
            raise errors.ProgrammingError(msg)
        self._transaction = self.database.begin(commit=commit)
        return self._transaction

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[SqliteCursor]:
        """A cursor in a transaction, committed (commit=True) or rolled back on exit."""
        with SQLiteTransaction(self, commit=commit) as cursor:
            yield cursor

    def cursor(self) -> SqliteCursor:
        """A cursor outside any transaction (each statement commits)."""
        if self.closed or self.database.closed:
            msg = f"SQLite connection to {self.database.path} is closed"
            raise errors.InterfaceError(msg)
        return self.database.cursor()

    def commit(self) -> None:
        self._end(commit=True)

    def rollback(self) -> None:
        self._end(commit=False)

    def _end(self, *, commit: bool) -> None:
        if self.closed:
            msg = f"SQLite connection to {self.database.path} is closed"
            raise errors.InterfaceError(msg)
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            transaction.end(commit=commit)

    def _close(self) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            transaction.close()
        super()._close()


class SQLiteTransaction:
    """A transaction on a connection: the cursor on entry; commit (if
    ``commit``) or roll back on exit; sqlite3 errors become esox's."""

    def __init__(self, connection: Any, *, commit: bool = False) -> None:
        self.connection = connection
        self.commit = commit

    def __enter__(self) -> Any:
        try:
            begin = getattr(self.connection, "begin", None)
            if begin is not None:
                return begin(commit=self.commit)
            # Any DB-API connection in autocommit mode (as eventsourcing's).
            cursor = self.connection.cursor()
            cursor.execute("BEGIN")
        except Exception as e:
            raise _esox_error(e) from e
        return cursor

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        try:
            if exc_val is not None or not self.commit:
                self.connection.rollback()
            else:
                self.connection.commit()
        except Exception as e:
            raise _esox_error(e) from (exc_val or e)
        if exc_val is not None:
            converted = _esox_error(exc_val)
            if converted is not exc_val:
                raise converted from exc_val


class SQLiteConnectionPool(ConnectionPool[SQLiteConnection]):
    """eventsourcing's pool of SQLite connections; in esox, handles on one
    Rust ``SqliteDatabase`` (opened on first use), so that ``:memory:`` is
    one database for every handle. In-memory pools make readers and the
    writer exclude each other, as eventsourcing's do."""

    def __init__(
        self,
        *,
        db_name: str,
        lock_timeout: float | None = None,
        pool_size: int = 5,
        max_overflow: int = 10,
        pool_timeout: float = 5.0,
        max_age: float | None = None,
        pre_ping: bool = False,
        synchronous: Synchronous = "FULL",
        database: SqliteDatabase | None = None,
    ) -> None:
        self.db_name = db_name
        self.lock_timeout = lock_timeout
        self.synchronous: Synchronous = synchronous
        self.is_sqlite_memory_mode = self.detect_memory_mode(db_name)
        self._database = database
        self._owns_database = database is None
        self._opening = threading.Lock()
        super().__init__(
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            max_age=max_age,
            pre_ping=pre_ping,
            mutually_exclusive_read_write=self.is_sqlite_memory_mode,
        )

    @staticmethod
    def detect_memory_mode(db_name: str) -> bool:
        """Whether the name denotes an in-memory database."""
        return bool(db_name) and (":memory:" in db_name or "mode=memory" in db_name)

    @property
    def database(self) -> SqliteDatabase:
        """The database, opened on first use (InterfaceError if it cannot be)."""
        if self._database is None:
            with self._opening:
                if self._database is None:
                    timeout = (
                        SQLiteFactory.DEFAULT_LOCK_TIMEOUT
                        if self.lock_timeout is None
                        else float(self.lock_timeout)
                    )
                    try:
                        self._database = SqliteDatabase(
                            self.db_name,
                            lock_timeout=timeout,
                            synchronous=self.synchronous,
                        )
                    except (TypeError, ValueError) as e:
                        msg = f"cannot open SQLite database {self.db_name!r}: {e}"
                        raise errors.InterfaceError(msg) from e
        return self._database

    @property
    def is_journal_mode_wal(self) -> bool:
        """Whether the database file is in WAL mode (False until opened)."""
        return self._database is not None and self._database.journal_mode_wal

    @property
    def journal_mode_was_changed_to_wal(self) -> bool:
        """Whether opening the database switched its file to WAL mode."""
        return (
            self._database is not None
            and self._database.journal_mode_was_changed_to_wal
        )

    def _create_connection(self) -> SQLiteConnection:
        return SQLiteConnection(self.database, max_age=self.max_age)

    def close(self) -> None:
        super().close()
        if self._owns_database and self._database is not None:
            self._database.close()


class SQLiteDatastore:
    """eventsourcing's handle on an SQLite database: ``transaction(commit=)``
    runs SQL of your own on the connections esox's recorders use, and
    recorders built on it (``SQLiteApplicationRecorder(datastore)``) create
    their tables when ``create_table()`` is called, as eventsourcing's do.

    ``single_row_tracking=False`` (eventsourcing's older tracking layout) is
    not supported by esox's tracking recorders.
    """

    def __init__(
        self,
        db_name: str,
        *,
        lock_timeout: float | None = None,
        pool_size: int = 5,
        max_overflow: int = 10,
        pool_timeout: float = 5.0,
        max_age: float | None = None,
        pre_ping: bool = False,
        single_row_tracking: bool = True,
        originator_id_type: OriginatorIdType = "uuid",
        synchronous: Synchronous = "FULL",
        database: SqliteDatabase | None = None,
    ) -> None:
        self.db_name = db_name
        self.originator_id_type: OriginatorIdType = originator_id_type
        self.single_row_tracking = single_row_tracking
        self.pool = SQLiteConnectionPool(
            db_name=db_name,
            lock_timeout=lock_timeout,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            max_age=max_age,
            pre_ping=pre_ping,
            synchronous=synchronous,
            database=database,
        )

    @classmethod
    def around(
        cls, database: SqliteDatabase, originator_id_type: OriginatorIdType = "uuid"
    ) -> SQLiteDatastore:
        """A datastore on an open database (which it does not close)."""
        return cls(
            database.path, originator_id_type=originator_id_type, database=database
        )

    @property
    def database(self) -> SqliteDatabase:
        """The esox database (opened on first use)."""
        return self.pool.database

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[SqliteCursor]:
        """A cursor in a transaction on the recorders' connection: a write
        transaction (BEGIN IMMEDIATE, committed on exit) if ``commit``, else
        a read transaction (rolled back on exit)."""
        conn = self.pool.get_connection(is_writer=commit)
        try:
            with SQLiteTransaction(conn, commit=commit) as cursor:
                yield cursor
        finally:
            self.pool.put_connection(conn)

    def close(self) -> None:
        """Close the pool (and the database, if the datastore opened it)."""
        self.pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _datastore(
    database: str | SqliteDatabase | SQLiteDatastore | None,
    originator_id_type: OriginatorIdType | None,
) -> tuple[SQLiteDatastore, SqliteDatabase | str]:
    """The datastore a recorder keeps, and what its tables are opened on."""
    if isinstance(database, SQLiteDatastore):
        return database, database.database
    if isinstance(database, SqliteDatabase):
        return SQLiteDatastore.around(database, originator_id_type or "uuid"), database
    if isinstance(database, str):
        opened = SqliteDatabase(database)
        datastore = SQLiteDatastore.around(opened, originator_id_type or "uuid")
        datastore.pool._owns_database = True
        return datastore, opened
    msg = (
        "an SQLite recorder needs an SQLiteDatastore, an SqliteDatabase or a "
        f"path, not {type(database).__qualname__}"
    )
    raise TypeError(msg)


class SQLiteRecorder(SqliteRecorder, Recorder):
    """Base of the SQLite recorders, and the extension point eventsourcing
    users subclass: ``construct_create_table_statements()`` (extended and run
    by ``create_table()``), ``_insert_events(c, stored_events, **kwargs)``
    (run by ``insert_events`` in a transaction; ``super()._insert_events``
    inserts natively in it), ``self.datastore.transaction(commit=...)``.

    A subclass that does not override ``_insert_events`` keeps the native
    ``insert_events`` (one Rust call, no Python transaction).
    """

    _has_events_table: ClassVar[bool] = False
    _keeps_notifications: ClassVar[bool] = False
    _has_tracking: ClassVar[bool] = False

    datastore: SQLiteDatastore
    create_table_statements: list[str]
    _bound_in_new: bool = False
    _owns_datastore: bool = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        recorder = super().__new__(cls)
        given = args[0] if args else kwargs.get("datastore", kwargs.get("database"))
        if isinstance(given, str | SqliteDatabase):
            # esox's own construction (a path or a database) binds at once,
            # so that a subclass whose __init__ does not call
            # super().__init__ keeps working; eventsourcing's (a datastore)
            # binds in __init__, where subclasses decide their tables.
            second = args[1] if len(args) > 1 and isinstance(args[1], str) else None
            table = kwargs.get("events_table") or kwargs.get("events_table_name")
            recorder._bind(
                given,
                table or second or "stored_events",
                kwargs.get("originator_id_type"),
            )
            recorder._bound_in_new = True
            if kwargs.get("create_table", True):
                SqliteRecorder.create_table(recorder)
        return recorder

    def _bind(
        self,
        given: SQLiteDatastore | SqliteDatabase | str | None,
        events_table: str,
        originator_id_type: OriginatorIdType | None,
    ) -> None:
        self.datastore, db = _datastore(given, originator_id_type)
        # Only a database this recorder opened (from a path) is closed with it.
        self._owns_datastore = isinstance(given, str)
        if self._has_tracking and not self.datastore.single_row_tracking:
            msg = (
                "esox records tracking one row per application "
                "(SINGLE_ROW_TRACKING); single_row_tracking=False is not supported"
            )
            raise NotSupportedError(msg)
        self._configure(
            db,
            events_table if self._has_events_table else None,
            notifications=self._keeps_notifications,
            tracking=self._has_tracking,
            originator_id_type=originator_id_type or self.datastore.originator_id_type,
            create_table=False,
        )
        self.create_table_statements = list(self.native_create_table_statements)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overridden = cls._insert_events is not SQLiteRecorder._insert_events
        if overridden and "insert_events" not in cls.__dict__:
            cls.insert_events = SQLiteRecorder._insert_events_in_transaction  # type: ignore[method-assign, assignment]

    def __init__(
        self,
        datastore: SQLiteDatastore | SqliteDatabase | str | None = None,
        *,
        database: SQLiteDatastore | SqliteDatabase | str | None = None,
        originator_id_type: OriginatorIdType | None = None,
        create_table: bool | None = None,
    ) -> None:
        given = datastore if datastore is not None else database
        if self._bound_in_new:
            # Bound (and its own tables created) by __new__; a subclass may
            # have added statements since.
            self.create_table_statements = self.construct_create_table_statements()
            native = self.native_create_table_statements
            if create_table is not False and self.create_table_statements != native:
                self.create_table()
            return
        events_table = cast(str, getattr(self, "events_table_name", "stored_events"))
        self._bind(given, events_table, originator_id_type)
        self.create_table_statements = self.construct_create_table_statements()
        if create_table is None:
            # eventsourcing's recorders on a datastore wait for create_table().
            create_table = not isinstance(given, SQLiteDatastore)
        if create_table:
            self.create_table()

    def construct_create_table_statements(self) -> list[str]:
        """The statements ``create_table()`` runs; subclasses extend the list."""
        return list(self.native_create_table_statements)

    def create_table(self) -> None:
        """Create the tables (if they do not exist), in one transaction."""
        native = self.native_create_table_statements
        if (
            self.create_table_statements == native
            and type(self)._create_table is SQLiteRecorder._create_table
        ):
            # Checked before taking the write lock (a read-only file opens).
            SqliteRecorder.create_table(self)
            return
        with self.datastore.transaction(commit=True) as c:
            self._create_table(c)

    def _create_table(self, c: SqliteCursor) -> None:
        self._create_tables_in(c)
        native = set(self.native_create_table_statements)
        for statement in self.create_table_statements:
            if statement not in native:
                c.execute(statement)

    def _insert_events_in_transaction(
        self, stored_events: Sequence[Any], **kwargs: Any
    ) -> Sequence[int] | None:
        with self.datastore.transaction(commit=True) as c:
            return self._insert_events(c, stored_events, **kwargs)

    def _insert_events(
        self, c: SqliteCursor, stored_events: Sequence[Any], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert stored events (and ``tracking``, if given) in the cursor's
        transaction; returns their notification ids."""
        return self._insert_events_in(c, stored_events, tracking=kwargs.get("tracking"))

    def _insert_tracking(self, c: SqliteCursor, tracking: Any) -> None:
        """Insert a tracking record in the cursor's transaction."""
        self._insert_events_in(c, (), tracking=tracking)

    def close(self) -> None:
        """Stop using the recorder (closing a database it opened itself)."""
        super().close()
        if self._owns_datastore and not self.datastore.pool.closed:
            self.datastore.close()


class SQLiteAggregateRecorder(SQLiteRecorder, AggregateRecorder):
    """Records one kind of aggregate record (snapshots) in a WITHOUT ROWID table.

    ``insert_events`` returns None: the table keeps no notification ids.
    """

    _has_events_table = True

    def __init__(
        self,
        datastore: SQLiteDatastore | SqliteDatabase | str | None = None,
        events_table_name: str = "stored_events",
        *,
        database: SQLiteDatastore | SqliteDatabase | str | None = None,
        events_table: str | None = None,
        originator_id_type: OriginatorIdType | None = None,
        create_table: bool | None = None,
    ) -> None:
        self.events_table_name = events_table or events_table_name
        super().__init__(
            datastore,
            database=database,
            originator_id_type=originator_id_type,
            create_table=create_table,
        )


class SQLiteApplicationRecorder(SQLiteAggregateRecorder, ApplicationRecorder):
    """Records stored events with notification ids (the table's rowids)."""

    _keeps_notifications = True


class SQLiteTrackingRecorder(SQLiteRecorder, TrackingRecorder):
    """Records tracking positions alone (in the ``tracking`` table).

    ``create_table()`` notes what it found, as eventsourcing's does:
    ``tracking_table_exists``, ``tracking_migration_previous`` (the table's
    layout version before, None if it had none) and ``tracking_migration_current``.
    """

    _has_tracking = True
    _MIGRATION_MARK: ClassVar[str] = "__migration__"

    tracking_table_exists: bool = False
    tracking_migration_previous: int | None = None
    tracking_migration_current: int | None = None

    def create_table(self) -> None:
        try:
            previous = self.max_tracking_id(self._MIGRATION_MARK)
        except errors.MissingTableError:
            self.tracking_table_exists, previous = False, None
        else:
            self.tracking_table_exists = True
        self.tracking_migration_previous = previous
        super().create_table()
        self.tracking_migration_current = 1


class SQLiteProcessRecorder(
    SQLiteTrackingRecorder, SQLiteApplicationRecorder, ProcessRecorder
):
    """Records stored events and a tracking position in one transaction."""


class SQLiteFactory(InfrastructureFactory[Any]):
    """Builds SQLite recorders that share one database (and its connections)."""

    SQLITE_DBNAME = "SQLITE_DBNAME"
    SQLITE_LOCK_TIMEOUT = "SQLITE_LOCK_TIMEOUT"
    SQLITE_SYNCHRONOUS = "SQLITE_SYNCHRONOUS"
    SQLITE_SINGLE_ROW_TRACKING = "SINGLE_ROW_TRACKING"
    ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"
    CREATE_TABLE = "CREATE_TABLE"
    APPLICATION_RECORDER_TOPIC = "APPLICATION_RECORDER_TOPIC"
    PROCESS_RECORDER_TOPIC = "PROCESS_RECORDER_TOPIC"

    DEFAULT_LOCK_TIMEOUT = 5.0
    MAX_LOCK_TIMEOUT = 2_147_483.647
    """SQLite's busy timeout is a C int of milliseconds."""

    aggregate_recorder_class: type[SQLiteAggregateRecorder] = SQLiteAggregateRecorder
    application_recorder_class: type[SQLiteApplicationRecorder] = (
        SQLiteApplicationRecorder
    )
    process_recorder_class: type[SQLiteProcessRecorder] = SQLiteProcessRecorder

    def __init__(self, env: Environment | EnvType | None = None) -> None:
        super().__init__(env)
        db_name = self.env.read_path(self.SQLITE_DBNAME)
        if not db_name:
            keys = ", ".join(self.env.create_keys(self.SQLITE_DBNAME))
            msg = f"SQLite database name not found in environment with keys: {keys}"
            raise InfrastructureFactoryError(msg)
        try:
            id_type = self.env.read_choice(
                self.ORIGINATOR_ID_TYPE, "uuid", ("uuid", "text")
            )
        except InvalidSettingError as e:
            value = self.env.get(self.ORIGINATOR_ID_TYPE)
            msg = (
                f"{e} (Invalid {self.ORIGINATOR_ID_TYPE} {value!r}, "
                "must be 'uuid' or 'text')"
            )
            raise InvalidSettingError(msg) from None
        self.originator_id_type: OriginatorIdType = cast(OriginatorIdType, id_type)
        self.create_table = self.env.read_bool(self.CREATE_TABLE, default=True)
        lock_timeout = self.env.read_duration(
            self.SQLITE_LOCK_TIMEOUT,
            self.DEFAULT_LOCK_TIMEOUT,
            maximum=self.MAX_LOCK_TIMEOUT,
        )
        given_timeout = self.env.get(self.SQLITE_LOCK_TIMEOUT)
        lock_timeout_set = (
            given_timeout is not None and str(given_timeout).strip() != ""
        )
        self.database = SqliteDatabase(
            db_name,
            lock_timeout=lock_timeout,
            synchronous=self.env.read_choice(
                self.SQLITE_SYNCHRONOUS, "FULL", ("FULL", "NORMAL")
            ),
        )
        self.datastore = SQLiteDatastore(
            db_name,
            lock_timeout=lock_timeout if lock_timeout_set else None,
            originator_id_type=self.originator_id_type,
            single_row_tracking=self.env.read_bool(
                self.SQLITE_SINGLE_ROW_TRACKING, default=True
            ),
            database=self.database,
        )

    def _created(self, recorder: SQLiteRecorder) -> SQLiteRecorder:
        if self.create_table:
            recorder.create_table()
        return recorder

    def _make(self, cls: type[Any]) -> Any:
        """A recorder of ``cls``: eventsourcing's way (``datastore=``, then
        ``create_table()``), or, for a subclass whose own ``__init__`` takes
        ``create_table`` (esox's API), with the database and ``create_table=``."""
        init = cls.__init__
        ours = init in (SQLiteRecorder.__init__, SQLiteAggregateRecorder.__init__)
        if not ours and "create_table" in inspect.signature(init).parameters:
            return cls(self.database, create_table=self.create_table)
        return self._created(cls(datastore=self.datastore))

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        """A recorder of one kind of aggregate record, in table ``stored_<purpose>``."""
        recorder = self.aggregate_recorder_class(
            self.datastore, events_table_name="stored_" + purpose
        )
        return cast(AggregateRecorder, self._created(recorder))

    def application_recorder(self) -> ApplicationRecorder:
        """The recorder of events and notifications (table ``stored_events``)."""
        cls = self._recorder_class(
            self.APPLICATION_RECORDER_TOPIC, self.application_recorder_class
        )
        return cast(ApplicationRecorder, self._make(cls))

    def tracking_recorder(
        self, tracking_recorder_class: type[TrackingRecorder] | None = None
    ) -> TrackingRecorder:
        """A recorder of tracking positions (table ``tracking``)."""
        cls = self.tracking_recorder_class(
            tracking_recorder_class, SQLiteTrackingRecorder
        )
        return cast(TrackingRecorder, self._make(cls))

    def process_recorder(self) -> ProcessRecorder:
        """The recorder of events and tracking in one transaction."""
        cls = self._recorder_class(
            self.PROCESS_RECORDER_TOPIC, self.process_recorder_class
        )
        return cast(ProcessRecorder, self._make(cls))

    def close(self) -> None:
        """Close the database's connections (every recorder of this factory)."""
        self.datastore.close()
        self.database.close()
