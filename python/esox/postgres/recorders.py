"""PostgreSQL recorders of stored events and notifications, and their tables.

Tables and columns are eventsourcing 9.5's, so either library opens the
other's database. Every identifier is validated and quoted.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import starmap
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row

from esox._core import Notification, StoredEvent
from esox.persistence.errors import DataError, ProgrammingError
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    Recorder,
    Subscription,
)
from esox.postgres.datastore import (
    MAX_IDENTIFIER_BYTES,
    Connection,
    PostgresDatastore,
    check_identifier,
    quote,
)
from esox.postgres.groupcommit import Columns, GroupCommit

T = TypeVar("T")

__all__ = [
    "TRANSACTION_ID",
    "PgStoredEvent",
    "PostgresAggregateRecorder",
    "PostgresApplicationRecorder",
    "PostgresRecorder",
    "PostgresSubscription",
]


TRANSACTION_ID = "transaction_id"
"""The events table's column of the id of the transaction that wrote each row
(xid8): what tells a reader which ids may still be committed (docs/postgres.md)."""


class PgStoredEvent(NamedTuple):
    """eventsourcing's row shape of a stored event (its composite type's
    Python side); esox sends columns instead, but code written for
    eventsourcing may name it."""

    originator_id: UUID | str
    originator_version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class Table:
    """A table a recorder needs: created (and seeded) only if it is missing."""

    name: str
    create: tuple[str, ...]
    seed: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    # Checked against an existing table, to refuse a mismatched ORIGINATOR_ID_TYPE.
    originator_id_type: str | None = None
    # Columns added to an existing table that lacks them: (name, statements).
    added_columns: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Run with the connection when the table exists already (a migration).
    existing: Callable[[Connection], None] | None = None


_TABLE_INFO = (
    "SELECT (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a"
    " WHERE a.attrelid = c.oid AND a.attname = 'originator_id' AND NOT a.attisdropped)"
    " FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relname = %s"
)
_COLUMN_EXISTS = (
    "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute a"
    " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s"
    " AND NOT a.attisdropped)"
)
_SCHEMA_EXISTS = (
    "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = %s)"
)


def check_timeout(timeout: float) -> None:
    if math.isnan(timeout):
        msg = "timeout must be a number of seconds, not NaN"
        raise ValueError(msg)


def _check_version(value: object, name: str) -> None:
    if value is not None and (type(value) is not int):
        msg = f"{name} must be an int or None, not {type(value).__qualname__}"
        raise TypeError(msg)


def _check_limit(limit: object) -> None:
    if type(limit) is not int:
        msg = f"limit must be an int, not {type(limit).__qualname__}"
        raise TypeError(msg)
    if limit < 0:
        msg = f"limit must not be negative, got {limit}"
        raise ValueError(msg)


def truncated_identifier(name: str, size: int = MAX_IDENTIFIER_BYTES) -> str:
    """``name`` cut to ``size`` bytes, whole characters (PostgreSQL cuts
    identifiers to 63 bytes)."""
    return name.encode()[:size].decode(errors="ignore")


def index_name(table_name: str, suffix: str) -> str:
    """The name of a table's index: ``table_name`` and ``suffix``, as
    eventsourcing names it, if that fits in PostgreSQL's 63 bytes; else as
    much of the table's name as fits with a hash of the whole of it.

    (PostgreSQL would cut the longer name, and cut it could be the table's
    own name, or another table's index's.)
    """
    name = table_name + suffix
    if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.blake2b(table_name.encode(), digest_size=4).hexdigest()
    room = MAX_IDENTIFIER_BYTES - len(suffix.encode()) - len(digest) - 1
    return f"{truncated_identifier(table_name, room)}_{digest}{suffix}"


class PostgresRecorder(Recorder):
    """Base class of the PostgreSQL recorders: a datastore and its tables."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self.schema = datastore.schema
        self._sql_create: list[Any] | None = None
        self._own_creates = 0

    @property
    def sql_create_statements(self) -> list[Any]:
        """The CREATE statements of the recorder's own tables (psycopg
        ``SQL``, as eventsourcing's recorders list theirs), then any that a
        subclass adds (eventsourcing's extension point: the tables of its
        view). ``create_table`` creates whichever of its own tables are
        missing (migrating older ones), then runs the added statements."""
        if self._sql_create is None:
            own = [sql.SQL(s) for t in self._tables() for s in t.create]
            self._sql_create, self._own_creates = own, len(own)
        return self._sql_create

    @sql_create_statements.setter
    def sql_create_statements(self, statements: list[Any]) -> None:
        # A list set whole is run whole, after the recorder's own creation.
        self._sql_create, self._own_creates = list(statements), 0

    @staticmethod
    def check_identifier_length(name: str) -> None:
        """ProgrammingError if ``name`` is longer than PostgreSQL's 63 bytes
        (PostgreSQL would cut it, and two names could become one)."""
        if len(name.encode()) > 63:
            msg = f"Identifier too long: {name!r} is over PostgreSQL's 63 bytes"
            raise ProgrammingError(msg)

    def _tables(self) -> list[Table]:
        return []

    def create_table(self) -> None:
        """Create the schema and the recorder's tables, those that are missing.

        An advisory lock serialises concurrent creators: racing ``CREATE
        TABLE IF NOT EXISTS`` statements can fail in PostgreSQL.
        """
        schema = self.schema
        tables = self._tables()
        extra = self.sql_create_statements[self._own_creates :]

        def create(conn: Connection) -> None:
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"esox:{schema}",)
                )
                row = conn.execute(_SCHEMA_EXISTS, (schema,)).fetchone()
                if not (row and row[0]):
                    conn.execute(f"CREATE SCHEMA {quote(schema)}")
                for table in tables:
                    _create(conn, schema, table)
                for statement in extra:
                    conn.execute(statement)

        names = ", ".join(t.name for t in tables)
        # Creating what is missing can run again after a lost connection
        # (whether or not it committed); statements of a subclass's own may not.
        again = None if extra else _not_known
        self.datastore.write(
            f"create_table {names} in schema {schema!r}", create, again
        )


def _not_known(conn: Connection) -> None:
    """For ``datastore.write``: a write that may run again, whatever became
    of the lost one."""
    return None


def _create(conn: Connection, schema: str, table: Table) -> None:
    row = conn.execute(_TABLE_INFO, (schema, table.name)).fetchone()
    if row is None:
        for statement in table.create:
            conn.execute(statement)
        for statement, params in table.seed:
            conn.execute(statement, params)
        return
    if table.existing is not None:
        table.existing(conn)
    if table.originator_id_type and row[0] != table.originator_id_type:
        msg = (
            f"table {quote(schema, table.name)} has {row[0]} originator ids, but "
            f"ORIGINATOR_ID_TYPE is {table.originator_id_type!r}"
        )
        raise ProgrammingError(msg)
    for column, statements in table.added_columns:
        exists = conn.execute(_COLUMN_EXISTS, (schema, table.name, column)).fetchone()
        if not (exists and exists[0]):
            for statement in statements:
                conn.execute(statement)


class PostgresAggregateRecorder(PostgresRecorder, AggregateRecorder):
    """Stored events of aggregates in one table (snapshots use this alone)."""

    _numbered = False

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        **kwargs: Any,
    ) -> None:
        super().__init__(datastore, **kwargs)
        self.events_table_name = check_identifier(
            events_table_name, "events table name"
        )
        self._uuid_ids = datastore.originator_id_type == "uuid"
        self._events = quote(self.schema, events_table_name)
        table = quote(self.schema, events_table_name, params=True)
        id_type = datastore.originator_id_type
        self._sql_insert_into = (
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
        )
        self._sql_unnest = (
            f"unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) AS u"
        )
        self._sql_insert_events = (
            f"{self._sql_insert_into}SELECT * FROM {self._sql_unnest}"
        )
        self._sql_select_events_from = (
            "SELECT originator_id, originator_version, topic, state "
            f"FROM {table} WHERE originator_id = %b"
        )
        self._sql_select_events: dict[tuple[bool, bool, bool, bool], str] = {}
        # Whether a batch is stored as given (after its connection was lost):
        # per event in order, its notification id (0 without one) and whether
        # the row at its originator id and version has its topic and state.
        number = "e.notification_id" if self._numbered else "0"
        self._sql_committed = (
            f"SELECT {number}, e.topic = u.topic AND e.state = u.state FROM "
            f"unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "WITH ORDINALITY AS u (originator_id, originator_version, topic, "
            f"state, n) LEFT JOIN {table} AS e ON e.originator_id = u.originator_id"
            " AND e.originator_version = u.originator_version ORDER BY u.n"
        )
        self._what_insert = f"insert_events into {self._events}"
        self._what_select = f"select_events from {self._events}"

    @property
    def originator_id_type(self) -> str:
        """``"uuid"`` or ``"text"``: the type of the originator_id column."""
        return self.datastore.originator_id_type

    def _tables(self) -> list[Table]:
        table = self._events
        id_type = self.datastore.originator_id_type
        columns = (
            f"originator_id {id_type} NOT NULL, originator_version bigint NOT NULL, "
            "topic text, state bytea, "
        )
        create: tuple[str, ...]
        if not self._numbered:
            create = (
                f"CREATE TABLE {table} ({columns}"
                "PRIMARY KEY (originator_id, originator_version))",
            )
        else:
            index = index_name(self.events_table_name, "_notification_id_idx")
            create = (
                f"CREATE TABLE {table} ({columns}notification_id bigserial, "
                f"{TRANSACTION_ID} xid8 DEFAULT pg_current_xact_id(), "
                "PRIMARY KEY (originator_id, originator_version))",
                f"CREATE UNIQUE INDEX {quote(index)} ON {table} (notification_id ASC)",
            )
            # A table of eventsourcing, or of an earlier esox, gains the
            # column (empty in its existing rows: instant, no rewrite).
            added = (
                (
                    TRANSACTION_ID,
                    (
                        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "
                        f"{TRANSACTION_ID} xid8",
                        f"ALTER TABLE {table} ALTER COLUMN {TRANSACTION_ID} "
                        "SET DEFAULT pg_current_xact_id()",
                    ),
                ),
            )
        spec = Table(
            self.events_table_name,
            create,
            originator_id_type=id_type,
            added_columns=added if self._numbered else (),
        )
        return [*super()._tables(), spec]

    def _originator(self, originator_id: object) -> UUID | str:
        """An originator id as the table stores it."""
        if self._uuid_ids:
            if type(originator_id) is UUID:
                return originator_id
            if isinstance(originator_id, str):
                try:
                    return UUID(originator_id)
                except ValueError:
                    msg = (
                        f"originator_id {originator_id!r} is not a UUID, but "
                        f"{self._events} has uuid originator ids "
                        "(ORIGINATOR_ID_TYPE=text stores any string)"
                    )
                    raise DataError(msg) from None
            if isinstance(originator_id, UUID):
                return originator_id
        else:
            if type(originator_id) is str:
                return originator_id
            if isinstance(originator_id, UUID | str):
                return str(originator_id)
        kind = type(originator_id).__qualname__
        msg = f"originator_id must be a UUID or a str, not {kind}"
        raise TypeError(msg)

    def _columns(self, stored_events: Iterable[StoredEvent]) -> Columns:
        """The batch as four column arrays, checked before anything is sent."""
        ids: list[Any] = []
        versions: list[int] = []
        topics: list[str] = []
        states: list[bytes] = []
        originator = self._originator
        try:
            events = iter(stored_events)
        except TypeError:
            kind = type(stored_events).__qualname__
            msg = f"stored_events must be a sequence of StoredEvent, not {kind}"
            raise TypeError(msg) from None
        for event in events:
            if not isinstance(event, StoredEvent):
                kind = type(event).__qualname__
                msg = f"stored_events must contain StoredEvent objects, not {kind}"
                raise TypeError(msg)
            ids.append(originator(event.originator_id))
            versions.append(event.originator_version)
            topics.append(event.topic)
            states.append(event.state)
        return ids, versions, topics, states

    def _committed(
        self, columns: Columns
    ) -> Callable[[Connection], tuple[list[int]] | None]:
        """For ``datastore.write``: whether the batch ``columns`` is stored
        (its ids, in a 1-tuple) or not (None), after a write lost its
        connection. Every row is compared: a batch is all or nothing, and an
        event at the same version with another topic or state is another
        writer's."""

        def committed(conn: Connection) -> tuple[list[int]] | None:
            rows = conn.execute(self._sql_committed, columns, binary=True).fetchall()
            if rows and all(row[1] for row in rows):
                return ([row[0] for row in rows],)
            return None

        return committed

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert a batch atomically; IntegrityError if a version is taken."""
        columns = self._columns(stored_events)
        if columns[0]:

            def insert(conn: Connection) -> list[int]:
                conn.execute(self._sql_insert_events, columns, prepare=True)
                return []

            self.datastore.write(self._what_insert, insert, self._committed(columns))
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """Select one aggregate's stored events, by version."""
        params: list[Any] = [self._originator(originator_id)]
        _check_version(gt, "gt")
        _check_version(lte, "lte")
        if gt is not None:
            params.append(gt)
        if lte is not None:
            params.append(lte)
        if limit is not None:
            _check_limit(limit)
            params.append(limit)
        key = (gt is not None, lte is not None, bool(desc), limit is not None)
        query = self._sql_select_events.get(key)
        if query is None:
            query = self._sql_select_events[key] = self._select_events_query(*key)

        def select(conn: Connection) -> list[StoredEvent]:
            cursor = conn.execute(query, params, prepare=True, binary=True)
            return list(starmap(StoredEvent, cursor.fetchall()))

        return self.datastore.read(self._what_select, select)

    def _select_events_query(self, gt: bool, lte: bool, desc: bool, limit: bool) -> str:
        query = self._sql_select_events_from
        if gt:
            query += " AND originator_version > %b"
        if lte:
            query += " AND originator_version <= %b"
        query += (
            " ORDER BY originator_version DESC"
            if desc
            else " ORDER BY originator_version"
        )
        if limit:
            query += " LIMIT %b"
        return query


class PostgresApplicationRecorder(PostgresAggregateRecorder, ApplicationRecorder):
    """Stored events numbered as notifications that followers can never skip.

    Writers draw their ids (and their transaction id) one at a time, under
    an advisory lock that each releases before its COMMIT, so commits share
    WAL flushes. Readers return ids up to the first one that a transaction
    still in flight may yet precede: the rows' transaction ids and the
    reader's snapshot tell which (see docs/postgres.md). A table without the
    transaction id column (CREATE_TABLE=no over an old table) is written the
    old way instead: the lock is held through the COMMIT.
    """

    _numbered = True

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        **kwargs: Any,
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name, **kwargs)
        # eventsourcing's channel name (database-wide, like all channels).
        self.channel = self.events_table_name
        table = quote(self.schema, self.events_table_name, params=True)
        self._table = table
        # The advisory lock's key comes from the table's qualified name, so
        # every esox writer of the table, in any process, takes the same one.
        # (A collision with another key only makes two tables share a lock.)
        # eventsourcing's writers take LOCK TABLE ... EXCLUSIVE instead, which
        # conflicts with the ROW EXCLUSIVE lock an INSERT holds to its COMMIT:
        # esox and eventsourcing writers exclude each other too.
        digest = hashlib.blake2b(
            f"esox notification ids {self._events}".encode(), digest_size=8
        ).digest()
        self.lock_key = int.from_bytes(digest, "big", signed=True)
        # A test's hook: seconds to sleep after drawing the ids, before COMMIT.
        self._pause = 0.0
        self._horizon: bool | None = None
        self._compose()
        self._sql_select_notifications_from = (
            "SELECT originator_id, originator_version, topic, state, notification_id "
            f"FROM {table} WHERE notification_id > %b"
        )
        self._sql_select_notifications: dict[tuple[bool, bool], str] = {}
        self._sql_max_notification_id = (
            f"SELECT max(notification_id) FROM {self._events}"
        )
        self._sql_max_settled = (
            f"SELECT max(notification_id) FROM {self._events} WHERE {TRANSACTION_ID}"
            " IS NULL OR {TRANSACTION_ID} < pg_snapshot_xmin(pg_current_snapshot())"
        ).replace("{TRANSACTION_ID}", TRANSACTION_ID)
        self._sql_has_horizon = (
            "SELECT to_regclass(%s) IS NOT NULL, EXISTS (SELECT FROM"
            " pg_catalog.pg_attribute WHERE attrelid = to_regclass(%s)"
            f" AND attname = '{TRANSACTION_ID}' AND NOT attisdropped)"
        )
        self._what_notifications = f"select_notifications from {self._events}"
        self._what_max = f"max_notification_id of {self._events}"
        self._group_commit = GroupCommit(self._insert_batch)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass that overrides the ``_insert_events`` hook (and not
        # ``insert_events`` itself) inserts in a transaction that runs the
        # hook; the others keep the native insert (group commit, one
        # statement a batch).
        super().__init_subclass__(**kwargs)
        if "insert_events" in cls.__dict__:
            return
        owner = next(c for c in cls.__mro__[1:] if "insert_events" in c.__dict__)
        if cls._insert_events is not getattr(owner, "_insert_events", None):
            cls.insert_events = (  # type: ignore[method-assign]
                PostgresApplicationRecorder._insert_events_in_transaction
            )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> list[int]:
        """Insert a batch atomically; returns its notification ids, contiguous."""
        if kwargs.get("tracking") is not None:
            raise self._no_tracking()
        columns = self._columns(stored_events)
        if not columns[0]:
            return []
        return self._group_commit.insert(columns)

    def _no_tracking(self) -> ProgrammingError:
        name = type(self).__name__
        return ProgrammingError(
            f"{name} does not record tracking: use a process recorder"
        )

    def _insert_events(
        self,
        curs: psycopg.Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> Sequence[int] | None:
        """eventsourcing's extension point: run in the inserting transaction,
        with its cursor (rows as dicts), before the events are inserted.
        Override it to write rows of your own atomically with the events
        (``insert_events(..., **kwargs)`` passes its keyword arguments on);
        call ``super()._insert_events(curs, stored_events, **kwargs)``. This
        one does nothing; a process recorder's records ``tracking``."""
        return None

    def _insert_events_in_transaction(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> list[int]:
        """``insert_events`` of a subclass with an ``_insert_events`` hook:
        the hook and the events in one transaction of their own.

        The insert lock is taken first, and the transaction id drawn under
        it, so that ids and transaction ids are drawn in one order, as by
        the native insert (docs/postgres.md); the lock is held while the
        hook runs and released before the COMMIT (on a table without the
        transaction id column, held through the COMMIT).
        """
        self._check_hook_kwargs(kwargs)
        columns = self._columns(stored_events)
        # Read before a connection is taken (it uses one of its own).
        horizon = self.horizon if columns[0] else False

        def run(conn: Connection) -> list[int]:
            def insert() -> list[int]:
                with conn.transaction():
                    if columns[0]:
                        lock = self._sql_hook_lock if horizon else self._sql_hook_xlock
                        conn.execute(lock, prepare=True)
                    with conn.cursor(row_factory=dict_row) as curs:
                        self._insert_events(curs, stored_events, **kwargs)
                    if not columns[0]:
                        return []
                    ids = sorted(
                        _ids(
                            conn.execute(
                                self._sql_insert_returning,
                                columns,
                                prepare=True,
                                binary=True,
                            )
                        )
                    )
                    if horizon:
                        conn.execute(self._sql_hook_unlock, prepare=True)
                    return ids

            return locked_insert(conn, self.lock_key, insert)

        committed = self._committed(columns) if columns[0] else None
        ids = self.datastore.write(self._what_insert, run, committed)
        channels = self._channels_written(ids, kwargs)
        if channels:
            # After the COMMIT, as the native insert does.
            self.datastore.notify(*channels)
        return ids

    def _check_hook_kwargs(self, kwargs: dict[str, Any]) -> None:
        if kwargs.get("tracking") is not None:
            raise self._no_tracking()

    def _channels_written(self, ids: list[int], kwargs: dict[str, Any]) -> list[str]:
        """The channels to notify after a hook's transaction committed."""
        return [self.channel] if ids else []

    @property
    def horizon(self) -> bool:
        """Whether the table has the transaction id column (read once the
        table exists; until then, the statements fail as missing tables do)."""
        if self._horizon is None:

            def select(conn: Connection) -> tuple[bool, bool]:
                names = (self._events, self._events)
                row = conn.execute(self._sql_has_horizon, names).fetchone()
                return (bool(row[0]), bool(row[1])) if row else (False, False)

            exists, horizon = self.datastore.read(f"columns of {self._events}", select)
            if not exists:
                return True
            self._horizon = horizon
        return self._horizon

    def _compose(self) -> None:
        """The INSERT statements: lock, draw ids, unlock; committed on its own.

        The rows are selected from the lock's CTE, so no id (and no
        transaction id) is drawn before the lock is held; the unlock counts
        the inserted rows, so it comes after the last. One statement in
        autocommit mode is one round trip, committed by the server straight
        away. The serialised form (a table without the transaction id
        column) holds a transaction-level lock through the COMMIT instead.
        """
        key = self.lock_key
        self._sql_locked = f"locked AS MATERIALIZED (SELECT pg_advisory_lock({key}))"
        self._sql_unlocked = (
            "unlocked AS MATERIALIZED (SELECT pg_advisory_unlock("
            f"{key}) FROM (SELECT count(*) FROM new) AS n)"
        )
        self._sql_serialised = (
            f"locked AS MATERIALIZED (SELECT pg_advisory_xact_lock({key}))"
        )
        id_type = self.datastore.originator_id_type
        # One event (a command's usual batch): plain parameters, which
        # psycopg sends at a fraction of the CPU of four arrays.
        one = f"(VALUES (%b::{id_type}, %b::bigint, %b::text, %b::bytea)) AS u"
        self._sql_insert_events = self._insert_statement(
            self._sql_locked, True, self._sql_unnest
        )
        self._sql_insert_serialised = self._insert_statement(
            self._sql_serialised, False, self._sql_unnest
        )
        self._sql_insert_one = self._insert_statement(self._sql_locked, True, one)
        self._sql_insert_one_serialised = self._insert_statement(
            self._sql_serialised, False, one
        )
        # The transaction of an ``_insert_events`` hook: the lock, and the
        # transaction id drawn under it (before any write of the hook's).
        self._sql_hook_lock = (
            f"WITH {self._sql_locked} SELECT pg_current_xact_id() FROM locked"
        )
        self._sql_hook_xlock = f"SELECT pg_advisory_xact_lock({key})"
        self._sql_hook_unlock = f"SELECT pg_advisory_unlock({key})"
        self._sql_insert_returning = (
            f"{self._sql_insert_into}SELECT * FROM {self._sql_unnest} "
            "RETURNING notification_id"
        )

    def _insert_statement(self, lock: str, unlock: bool, rows: str) -> str:
        ctes = [
            lock,
            f"new AS ({self._sql_insert_into}"
            f"SELECT u.* FROM locked, {rows} RETURNING notification_id)",
        ]
        joined = "new"
        after = "(SELECT count(*) FROM new) AS n"
        if unlock:
            ctes.append(self._sql_unlocked)
            joined += ", unlocked"
            after = "unlocked"
        if self._pause:
            # After the unlock: a writer that stalls with its ids drawn.
            ctes.append(
                f"paused AS MATERIALIZED (SELECT pg_sleep({self._pause}) FROM {after})"
            )
            joined += ", paused"
        return (
            f"WITH {', '.join(ctes)} SELECT notification_id FROM {joined} "
            "ORDER BY notification_id"
        )

    def _insert_batch(self, columns: Columns) -> list[int]:
        params: Sequence[Any] = columns
        if len(columns[0]) == 1:
            params = [column[0] for column in columns]
            statement = (
                self._sql_insert_one
                if self.horizon
                else self._sql_insert_one_serialised
            )
        elif self.horizon:
            statement = self._sql_insert_events
        else:
            statement = self._sql_insert_serialised
        ids = self.datastore.write(
            self._what_insert,
            lambda conn: _ids(
                locked_insert(
                    conn,
                    self.lock_key,
                    lambda: conn.execute(statement, params, prepare=True, binary=True),
                )
            ),
            self._committed(columns),
        )
        self.datastore.notify(self.channel)
        return ids

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        """Select notifications from ``start`` (ids ascending), at most ``limit``.

        Only ids that no transaction still in flight can precede are
        returned, so a reader that moves on from the last one skips nothing.
        """
        _check_version(start, "start")
        _check_version(stop, "stop")
        _check_limit(limit)
        if isinstance(topics, str):
            msg = "topics must be a sequence of str, not a str"
            raise TypeError(msg)
        # Ids after ``after``: bigserial ids start at 1.
        after = 0 if start is None else start - (1 if inclusive_of_start else 0)
        if self.horizon:
            if not topics:
                return self.settled(after, limit, stop)[0]
            # Filtered rows leave gaps that say nothing: read up to the
            # last settled id instead (settled ids stay settled).
            settled = self.max_notification_id()
            if settled is None or settled <= after:
                return []
            stop = settled if stop is None else min(stop, settled)
        params: list[Any] = [after]
        if stop is not None:
            params.append(stop)
        if topics:
            params.append(list(topics))
        params.append(limit)
        key = (stop is not None, bool(topics))
        query = self._sql_select_notifications.get(key)
        if query is None:
            query = self._sql_select_notifications_from
            if stop is not None:
                query += " AND notification_id <= %b"
            if topics:
                query += " AND topic = ANY(%b::text[])"
            query += " ORDER BY notification_id LIMIT %b"
            self._sql_select_notifications[key] = query

        def select(conn: Connection) -> list[Notification]:
            cursor = conn.execute(query, params, prepare=True, binary=True)
            return list(starmap(Notification, cursor.fetchall()))

        return self.datastore.read(self._what_notifications, select)

    def settled(
        self, after: int, limit: int, stop: int | None = None
    ) -> tuple[list[Notification], bool]:
        """Notifications after ``after`` that no transaction in flight can
        precede, at most ``limit``; and whether one was held back for that.

        Most rows are settled by the two cheap rules, which a plain indexed
        read can mark: the row follows the previous one with no gap, or it
        was written before every transaction in flight. Only from a row that
        neither rule settles is the rest read again with all three rules
        (``_settled_query``: a window over the rows and the snapshot's
        transactions in flight), which costs the server twice the read.
        """
        # Ids start at 1: reading after -1 (from start=0) is reading after 0,
        # so that the first row follows its position by rule 1 (no gap).
        after = max(after, 0)
        plain, quick = _quick_settled_queries(self._table, stop is not None)
        params: list[Any] = [after]
        if stop is not None:
            params.append(stop)
        params.append(limit + 1)

        def select(conn: Connection) -> tuple[list[Notification], bool]:
            rows = conn.execute(plain, params, prepare=True, binary=True).fetchall()
            if not rows or rows[-1][4] - after == len(rows):
                # No gap: every row is settled by the first rule.
                return list(starmap(Notification, rows[:limit])), False
            rows = conn.execute(quick, params, prepare=True, binary=True).fetchall()
            notifications: list[Notification] = []
            previous = after
            for *fields, old in rows:
                notification_id = fields[4]
                if not (old or notification_id == previous + 1):
                    # The rest by all the rules, from the last row taken.
                    rest, held = self._settled_by_all_rules(
                        conn, previous, limit - len(notifications), stop
                    )
                    return notifications + rest, held
                if len(notifications) == limit:
                    break
                notifications.append(Notification(*fields))
                previous = notification_id
            return notifications, False

        return self.datastore.read(self._what_notifications, select)

    def _settled_by_all_rules(
        self, conn: Connection, after: int, limit: int, stop: int | None
    ) -> tuple[list[Notification], bool]:
        query = _settled_query(self._table, stop is not None)
        params: list[Any] = [after]
        if stop is not None:
            params.append(stop)
        params += [limit + 1, after, after]
        rows = conn.execute(query, params, prepare=True, binary=True).fetchall()
        notifications: list[Notification] = []
        for *fields, settled in rows:
            if not settled:
                return notifications, True
            if len(notifications) == limit:
                break
            notifications.append(Notification(*fields))
        return notifications, False

    def max_notification_id(self) -> int | None:
        """The id of the last notification that readers can be given, or None."""
        if not self.horizon:

            def select_max(conn: Connection) -> int | None:
                row = conn.execute(
                    self._sql_max_notification_id, prepare=True
                ).fetchone()
                return row[0] if row else None

            return self.datastore.read(self._what_max, select_max)

        def select(conn: Connection) -> int | None:
            row = conn.execute(self._sql_max_settled, prepare=True).fetchone()
            return row[0] if row else None

        # Every row written before the oldest transaction in flight is
        # settled; the rows after it are few (those of the last moments).
        newest = self.datastore.read(self._what_max, select)
        position = newest or 0
        while True:
            batch, _ = self.settled(position, 1000)
            if not batch:
                return position or newest
            position = batch[-1].id

    def wait_for_notification(self, gt: int, timeout: float) -> bool:
        """Block until a notification after ``gt`` can be read, or ``timeout``
        passes. Woken by NOTIFY (LISTEN on the table's channel); polls too."""
        check_timeout(timeout)
        deadline = time.monotonic() + timeout
        listener = self.datastore.listener
        while True:
            generation = listener.generation(self.channel)
            if self.horizon:
                batch, held = self.settled(gt, 1)
                if batch:
                    return True
            else:
                held = False
                if (self.max_notification_id() or 0) > gt:
                    return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # A held-back id waits for a transaction in flight: it ends with
            # a NOTIFY if it commits, with none if it rolls back or dies.
            listener.wait(
                self.channel,
                generation,
                min(remaining, HELD_POLL) if held else remaining,
            )

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription:
        """Iterate over notifications after ``gt`` as they are committed (LISTEN)."""
        return PostgresSubscription(self, gt=gt, topics=topics)


HELD_POLL = 0.05
"""How often a reader held back by a transaction in flight checks again."""


def locked_insert(conn: Connection, key: int, execute: Callable[[], T]) -> T:
    """Run an INSERT that takes the session lock ``key`` and releases it; if
    it fails, release the lock if it still holds it (only that one: the
    connection may hold other session locks)."""
    try:
        return execute()
    except BaseException:
        if not (conn.closed or conn.broken):
            try:
                if conn.pgconn.transaction_status != TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                held = conn.execute(_SQL_HOLDS_LOCK, _lock_ids(key)).fetchone()
                if held and held[0]:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except psycopg.Error:
                conn.close()
        raise


# Whether this session holds the session-level advisory lock (classid, objid).
_SQL_HOLDS_LOCK = (
    "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory'"
    " AND pid = pg_backend_pid() AND classid = %s::oid AND objid = %s::oid"
    " AND objsubid = 1 AND granted)"
)


def _lock_ids(key: int) -> tuple[int, int]:
    """The (classid, objid) under which pg_locks shows the bigint lock ``key``."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


@functools.cache
def _quick_settled_queries(table: str, stop: bool) -> tuple[str, str]:
    """Rows after a position; and the same, each marked if it was written
    before every transaction in flight (or before the transaction id column
    existed)."""
    until = " AND notification_id <= %b" if stop else ""
    where = f"FROM {table} WHERE notification_id > %b{until}"
    order = "ORDER BY notification_id LIMIT %b"
    columns = "originator_id, originator_version, topic, state, notification_id"
    old = (
        f"({TRANSACTION_ID} IS NULL OR {TRANSACTION_ID} < "
        "(SELECT pg_snapshot_xmin(pg_current_snapshot())))"
    )
    return (
        f"SELECT {columns} {where} {order}",
        f"SELECT {columns}, {old} {where} {order}",
    )


@functools.cache
def _settled_query(table: str, stop: bool) -> str:
    """Rows after a position, each marked settled or not (held back).

    Ids and transaction ids are drawn in one order, under the lock, so a
    transaction in flight that holds an id in a gap between two rows has a
    transaction id between theirs, and is in the reader's snapshot. A row is
    settled if it follows the previous one with no gap, or was written before
    every transaction in flight, or if no transaction in flight has a
    transaction id between its and the previous row's. The first row that is
    not settled ends what is returned.
    """
    until = " AND notification_id <= %b" if stop else ""
    return (
        "WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s), "
        "page AS MATERIALIZED (SELECT r.*, lag(r.notification_id) OVER w AS prev_id,"
        " lag(r.x) OVER w AS prev_x FROM (SELECT originator_id, originator_version,"
        f" topic, state, notification_id, {TRANSACTION_ID} AS x FROM {table}"
        f" WHERE notification_id >= %b{until} ORDER BY notification_id LIMIT %b) AS r"
        " WINDOW w AS (ORDER BY r.notification_id)) "
        "SELECT originator_id, originator_version, topic, state, notification_id, "
        "(x IS NULL OR x < pg_snapshot_xmin(snap.s)"
        " OR notification_id = coalesce(prev_id, %b) + 1"
        " OR NOT EXISTS (SELECT FROM pg_snapshot_xip(snap.s) AS live(xid)"
        " WHERE live.xid < page.x AND (page.prev_x IS NULL OR live.xid > page.prev_x)))"
        " FROM page, snap WHERE notification_id > %b ORDER BY notification_id"
    )


def _ids(cursor: psycopg.Cursor[tuple[Any, ...]]) -> list[int]:
    return [row[0] for row in cursor.fetchall()]


class PostgresSubscription(Subscription):
    """A subscription woken by NOTIFY, polling as a fallback."""

    def __init__(
        self,
        recorder: PostgresApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
        batch_size: int = 1000,
    ) -> None:
        super().__init__(recorder, gt=gt, topics=topics, batch_size=batch_size)
        self._postgres = recorder
        self._listener = recorder.datastore.listener

    def stop(self) -> None:
        super().stop()
        self._listener.poke()

    def __next__(self) -> Notification:
        if self._stopped.is_set():
            # Stopped means ended, even with notifications in hand.
            raise StopIteration
        recorder, channel = self._postgres, self._postgres.channel
        topics = frozenset(self._topics)
        while not self._buffer:
            if self._stopped.is_set():
                raise StopIteration
            generation = self._listener.generation(channel)
            if recorder.horizon:
                # Every topic is read, so that the position moves past what
                # the filter leaves out, and only as far as ids are settled.
                batch, held = recorder.settled(self._last_id, self._batch_size)
                caught_up = len(batch) < self._batch_size
                if batch:
                    self._last_id = batch[-1].id
                    if topics:
                        batch = [n for n in batch if n.topic in topics]
            else:
                batch, held = self._serialised_batch(), False
                caught_up = not batch
            self._buffer.extend(reversed(batch))
            if not self._buffer and caught_up:
                timeout = HELD_POLL if held else self._listener.poll_interval
                self._listener.wait(channel, generation, timeout, self._stopped)
        return self._buffer.pop()

    def _serialised_batch(self) -> list[Notification]:
        recorder = self._postgres
        # Ids are issued in commit order, so everything up to the current
        # max is final: with topics, skip what the filter left out.
        newest = recorder.max_notification_id() if self._topics else None
        batch = recorder.select_notifications(
            self._last_id,
            self._batch_size,
            topics=self._topics,
            inclusive_of_start=False,
        )
        if batch:
            self._last_id = batch[-1].id
        if len(batch) < self._batch_size and newest is not None:
            self._last_id = max(self._last_id, newest)
        return batch
