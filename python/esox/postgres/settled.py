"""Notification ids that followers never skip: the writers' lock, the
readers' rules, and the subscription that follows them (docs/postgres.md).

Writers draw their ids (and their transaction id) one at a time, under an
advisory lock that each releases before its COMMIT; ``locked_insert`` makes
sure a failed write leaves no lock behind. Readers return ids up to the first
one that a transaction still in flight may yet precede: the rows'
transaction ids and the reader's snapshot tell which.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from itertools import starmap
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus

from esox._core import Notification
from esox.persistence.recorders import Subscription

if TYPE_CHECKING:
    from esox.postgres.datastore import Connection
    from esox.postgres.recorders import PostgresApplicationRecorder

__all__ = [
    "HELD_POLL",
    "TRANSACTION_ID",
    "PostgresSubscription",
    "insert_statement",
    "lock_ctes",
    "lock_key",
    "locked_insert",
    "max_settled_query",
    "select_notifications",
    "select_settled",
]

T = TypeVar("T")

TRANSACTION_ID = "transaction_id"
"""The events table's column of the id of the transaction that wrote each row
(xid8): what tells a reader which ids may still be committed (docs/postgres.md)."""

HELD_POLL = 0.05
"""How often a reader held back by a transaction in flight checks again."""


# Writers.


def lock_key(events: str) -> int:
    """The key of the advisory lock of the table ``events`` (quoted, qualified).

    It comes from the table's qualified name, so every esox writer of the
    table, in any process, takes the same one. (A collision with another key
    only makes two tables share a lock.) eventsourcing's writers take LOCK
    TABLE ... EXCLUSIVE instead, which conflicts with the ROW EXCLUSIVE lock
    an INSERT holds to its COMMIT: esox and eventsourcing writers exclude
    each other too.
    """
    digest = hashlib.blake2b(
        f"esox notification ids {events}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_ctes(key: int) -> tuple[str, str, str]:
    """The CTEs ``locked`` (the session lock ``key``), ``unlocked`` (its
    release, after every row of ``new``), and the serialised ``locked`` (a
    transaction-level lock, held through the COMMIT)."""
    return (
        f"locked AS MATERIALIZED (SELECT pg_advisory_lock({key}))",
        "unlocked AS MATERIALIZED (SELECT pg_advisory_unlock("
        f"{key}) FROM (SELECT count(*) FROM new) AS n)",
        f"locked AS MATERIALIZED (SELECT pg_advisory_xact_lock({key}))",
    )


def insert_statement(
    insert_into: str, lock: str, unlocked: str | None, rows: str, pause: float = 0.0
) -> str:
    """An INSERT of ``rows`` in one statement: the ``lock`` CTE, the rows
    (ids drawn), then the ``unlocked`` CTE, if any; committed on its own.

    The rows are selected from the lock's CTE, so no id (and no transaction
    id) is drawn before the lock is held; the unlock counts the inserted
    rows, so it comes after the last. One statement in autocommit mode is one
    round trip, committed by the server straight away. A ``pause`` (a test's)
    sleeps after the unlock: a writer that stalls with its ids drawn.
    """
    ctes = [
        lock,
        f"new AS ({insert_into}"
        f"SELECT u.* FROM locked, {rows} RETURNING notification_id)",
    ]
    joined = "new"
    after = "(SELECT count(*) FROM new) AS n"
    if unlocked is not None:
        ctes.append(unlocked)
        joined += ", unlocked"
        after = "unlocked"
    if pause:
        ctes.append(f"paused AS MATERIALIZED (SELECT pg_sleep({pause}) FROM {after})")
        joined += ", paused"
    return (
        f"WITH {', '.join(ctes)} SELECT notification_id FROM {joined} "
        "ORDER BY notification_id"
    )


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


# Readers.


def select_settled(
    conn: Connection, table: str, after: int, limit: int, stop: int | None
) -> tuple[list[Notification], bool]:
    """Notifications of ``table`` after ``after`` that no transaction in
    flight can precede, at most ``limit``; and whether one was held back.

    Most rows are settled by the two cheap rules, which a plain indexed
    read can mark: the row follows the previous one with no gap, or it
    was written before every transaction in flight. Only from a row that
    neither rule settles is the rest read again with all three rules
    (``_settled_query``: a window over the rows and the snapshot's
    transactions in flight), which costs the server twice the read.
    """
    plain, quick = _quick_settled_queries(table, stop is not None)
    params: list[Any] = [after]
    if stop is not None:
        params.append(stop)
    params.append(limit + 1)
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
            rest, held = _settled_by_all_rules(
                conn, table, previous, limit - len(notifications), stop
            )
            return notifications + rest, held
        if len(notifications) == limit:
            break
        notifications.append(Notification(*fields))
        previous = notification_id
    return notifications, False


def _settled_by_all_rules(
    conn: Connection, table: str, after: int, limit: int, stop: int | None
) -> tuple[list[Notification], bool]:
    query = _settled_query(table, stop is not None)
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


def select_notifications(
    conn: Connection,
    table: str,
    after: int,
    limit: int,
    stop: int | None,
    topics: Sequence[str],
) -> list[Notification]:
    """Notifications of ``table`` after ``after`` (up to ``stop``, of
    ``topics``), at most ``limit``, settled or not: for ids below the last
    settled one, or a table whose ids are issued in commit order."""
    params: list[Any] = [after]
    if stop is not None:
        params.append(stop)
    if topics:
        params.append(list(topics))
    params.append(limit)
    query = _notifications_query(table, stop is not None, bool(topics))
    cursor = conn.execute(query, params, prepare=True, binary=True)
    return list(starmap(Notification, cursor.fetchall()))


@functools.cache
def _notifications_query(table: str, stop: bool, topics: bool) -> str:
    query = (
        "SELECT originator_id, originator_version, topic, state, notification_id "
        f"FROM {table} WHERE notification_id > %b"
    )
    if stop:
        query += " AND notification_id <= %b"
    if topics:
        query += " AND topic = ANY(%b::text[])"
    return query + " ORDER BY notification_id LIMIT %b"


def max_settled_query(events: str) -> str:
    """The last id of ``events`` written before every transaction in flight."""
    return (
        f"SELECT max(notification_id) FROM {events} WHERE {TRANSACTION_ID}"
        f" IS NULL OR {TRANSACTION_ID} < pg_snapshot_xmin(pg_current_snapshot())"
    )


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
