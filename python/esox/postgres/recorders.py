"""PostgreSQL recorders of stored events and notifications.

Tables and columns are eventsourcing 9.5's, so either library opens the
other's database (esox.postgres.tables). Every identifier is validated and
quoted. Notification ids are drawn and read so that followers never skip one
(esox.postgres.settled).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from itertools import starmap
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import DictRow, dict_row

from esox._core import Notification, StoredEvent
from esox.persistence.errors import DataError, ProgrammingError
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    Subscription,
)
from esox.postgres.datastore import Connection, PostgresDatastore
from esox.postgres.groupcommit import Columns, GroupCommit
from esox.postgres.identifiers import (
    check_identifier,
    index_name,
    quote,
    truncated_identifier,
)
from esox.postgres.settled import (
    HELD_POLL,
    TRANSACTION_ID,
    PostgresSubscription,
    insert_statement,
    lock_ctes,
    lock_key,
    locked_insert,
    max_settled_query,
    select_notifications,
    select_settled,
)
from esox.postgres.tables import PgStoredEvent, PostgresRecorder, Table, events_table

# What moved to esox.postgres.identifiers, .settled and .tables is still
# importable from here, as it always was.
__all__ = [
    "HELD_POLL",
    "TRANSACTION_ID",
    "PgStoredEvent",
    "PostgresAggregateRecorder",
    "PostgresApplicationRecorder",
    "PostgresRecorder",
    "PostgresSubscription",
    "Table",
    "index_name",
    "locked_insert",
    "truncated_identifier",
]


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
        id_type = self.datastore.originator_id_type
        spec = events_table(
            self.schema, self.events_table_name, id_type, numbered=self._numbered
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
        self._table = quote(self.schema, self.events_table_name, params=True)
        self.lock_key = lock_key(self._events)
        # A test's hook: seconds to sleep after drawing the ids, before COMMIT.
        self._pause = 0.0
        self._horizon: bool | None = None
        self._compose()
        self._sql_max_notification_id = (
            f"SELECT max(notification_id) FROM {self._events}"
        )
        self._sql_max_settled = max_settled_query(self._events)
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

        def insert(conn: Connection) -> list[int]:
            with conn.transaction():
                if columns[0]:
                    lock = self._sql_hook_lock if horizon else self._sql_hook_xlock
                    conn.execute(lock, prepare=True)
                with conn.cursor(row_factory=dict_row) as curs:
                    self._insert_events(curs, stored_events, **kwargs)
                if not columns[0]:
                    return []
                statement = self._sql_insert_returning
                cursor = conn.execute(statement, columns, prepare=True, binary=True)
                ids = sorted(_ids(cursor))
                if horizon:
                    conn.execute(self._sql_hook_unlock, prepare=True)
                return ids

        def run(conn: Connection) -> list[int]:
            return locked_insert(conn, self.lock_key, lambda: insert(conn))

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
        """The INSERT statements: lock, draw ids, unlock; committed on its
        own (see ``insert_statement``). The serialised form (a table without
        the transaction id column) holds a transaction-level lock through the
        COMMIT instead."""
        key = self.lock_key
        self._sql_locked, self._sql_unlocked, self._sql_serialised = lock_ctes(key)
        id_type = self.datastore.originator_id_type
        # One event (a command's usual batch): plain parameters, which
        # psycopg sends at a fraction of the CPU of four arrays.
        one = f"(VALUES (%b::{id_type}, %b::bigint, %b::text, %b::bytea)) AS u"

        def insert(lock: str, unlock: str | None, rows: str) -> str:
            return insert_statement(
                self._sql_insert_into, lock, unlock, rows, self._pause
            )

        self._sql_insert_events = insert(
            self._sql_locked, self._sql_unlocked, self._sql_unnest
        )
        self._sql_insert_serialised = insert(
            self._sql_serialised, None, self._sql_unnest
        )
        self._sql_insert_one = insert(self._sql_locked, self._sql_unlocked, one)
        self._sql_insert_one_serialised = insert(self._sql_serialised, None, one)
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
        return self.datastore.read(
            self._what_notifications,
            lambda conn: select_notifications(
                conn, self._table, after, limit, stop, topics
            ),
        )

    def settled(
        self, after: int, limit: int, stop: int | None = None
    ) -> tuple[list[Notification], bool]:
        """Notifications after ``after`` that no transaction in flight can
        precede, at most ``limit``; and whether one was held back for that.

        Most rows are settled by two cheap rules, the rest by a third
        (esox.postgres.settled.select_settled).
        """
        # Ids start at 1: reading after -1 (from start=0) is reading after 0,
        # so that the first row follows its position by rule 1 (no gap).
        after = max(after, 0)
        return self.datastore.read(
            self._what_notifications,
            lambda conn: select_settled(conn, self._table, after, limit, stop),
        )

    def max_notification_id(self) -> int | None:
        """The id of the last notification that readers can be given, or None."""
        horizon = self.horizon
        query = self._sql_max_settled if horizon else self._sql_max_notification_id

        def select(conn: Connection) -> int | None:
            row = conn.execute(query, prepare=True).fetchone()
            return row[0] if row else None

        newest = self.datastore.read(self._what_max, select)
        if not horizon:
            return newest
        # Every row written before the oldest transaction in flight is
        # settled; the rows after it are few (those of the last moments).
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

        def ready() -> bool | None:
            if not self.horizon:
                return (self.max_notification_id() or 0) > gt
            batch, held = self.settled(gt, 1)
            # A held-back id waits for a transaction in flight: it ends with
            # a NOTIFY if it commits, with none if it rolls back or dies.
            return True if batch else (None if held else False)

        listener = self.datastore.listener
        return listener.wait_until(self.channel, timeout, ready, soon=HELD_POLL)

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription:
        """Iterate over notifications after ``gt`` as they are committed (LISTEN)."""
        return PostgresSubscription(self, gt=gt, topics=topics)


def _ids(cursor: psycopg.Cursor[tuple[Any, ...]]) -> list[int]:
    return [row[0] for row in cursor.fetchall()]
