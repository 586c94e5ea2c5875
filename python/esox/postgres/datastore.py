"""The PostgreSQL datastore: a connection pool, and reads and writes over it.

Every psycopg error raised by a recorder passes through ``translate_error``
(esox.postgres.errors), the one place where it becomes one of esox's
persistence errors. Reads that lose their connection are retried a bounded
number of times; writes never are, because the COMMIT may already have
reached the server. LISTEN and NOTIFY have threads of their own
(esox.postgres.channels).
"""

from __future__ import annotations

import functools
import logging
import math
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Self, TypeAlias, TypeVar, cast

import psycopg
import psycopg.errors
import psycopg_pool
from psycopg.adapt import AdaptersMap
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg.types.numeric import Int8BinaryDumper, Int8Dumper

from esox.persistence.errors import OperationalError
from esox.postgres.channels import Listener, Notifier
from esox.postgres.errors import (
    describe_error,
    is_connection_error,
    is_stale_statement,
    translate_error,
    translated,
)
from esox.postgres.identifiers import MAX_IDENTIFIER_BYTES, check_identifier, quote

# What moved to esox.postgres.channels, .errors and .identifiers is still
# importable from here, as it always was.
__all__ = [
    "MAX_IDENTIFIER_BYTES",
    "Listener",
    "Notifier",
    "PostgresDatastore",
    "check_identifier",
    "is_connection_error",
    "is_stale_statement",
    "quote",
    "translate_error",
]

logger = logging.getLogger(__name__)

Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]
T = TypeVar("T")

# Python ints are sent as bigint, whatever their size: every integer column is
# bigint, and one type per parameter means one prepared statement per query
# (psycopg would otherwise pick int2, int4 or int8 by value).
ADAPTERS = AdaptersMap(psycopg.adapters)
ADAPTERS.register_dumper(int, Int8Dumper)
ADAPTERS.register_dumper(int, Int8BinaryDumper)


def _has_pending_input(conn: Connection) -> bool:
    """Whether an idle connection has something to read: usually its death notice.

    A server that restarts, or an administrator who terminates a backend,
    sends an error and closes the socket. Seeing that before sending a write
    costs one non-blocking poll, not a round trip.
    """
    if conn.closed:
        return True
    try:
        fd = conn.fileno()
    except psycopg.Error:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


class ConnectionPool(psycopg_pool.ConnectionPool[Connection]):
    """psycopg's pool, asking ``get_password_func`` (if given) for the
    password of each new connection: for passwords that expire, such as
    cloud IAM tokens (eventsourcing's ``POSTGRES_GET_PASSWORD_TOPIC``); and
    handing out the idle connection returned last."""

    def __init__(
        self,
        *,
        kwargs: dict[str, Any],
        get_password_func: Callable[[], str] | None = None,
        **options: Any,
    ) -> None:
        self.get_password_func = get_password_func
        super().__init__(kwargs=kwargs, **options)

    def _connect(self, timeout: float | None = None) -> Connection:
        if self.get_password_func is not None and isinstance(self.kwargs, dict):
            self.kwargs["password"] = self.get_password_func()
        return super()._connect(timeout)

    def _get_ready_connection(self, timeout: float | None) -> Connection | None:
        """The idle connection returned last.

        psycopg's pool hands them out in turn, so a thread that reads and
        then writes wakes a different server process each time, whose
        caches have gone cold: one client ran its DCB decisions 1.3-1.5x
        faster on the connection it used last. The pool shrinks from the
        other end, closing the connections left idle longest.
        """
        # Called under the pool's lock; its deque takes connections from
        # the left and puts returned ones on the right.
        self._pool.rotate(1)
        return super()._get_ready_connection(timeout)


def _connect(
    kwargs: dict[str, Any], get_password_func: Callable[[], str] | None
) -> Connection:
    """A new connection outside the pool, with a fresh password if asked."""
    if get_password_func is not None:
        kwargs = {**kwargs, "password": get_password_func()}
    return psycopg.connect(**kwargs)


class PostgresDatastore:
    """A pool of connections to one database, shared by an application's recorders.

    Connections are in autocommit mode: each write is one statement, and so
    its own transaction, sent and committed in one round trip.
    """

    DEFAULT_CONNECT_TIMEOUT = 5.0

    def __init__(
        self,
        dbname: str,
        host: str | None = None,
        port: int | str | None = None,
        user: str | None = None,
        password: str | None = None,
        *,
        schema: str = "public",
        originator_id_type: str = "uuid",
        pool_size: int = 5,
        max_overflow: int = 10,
        max_waiting: int = 0,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        pool_timeout: float = 30.0,
        conn_max_age: float = 60 * 60.0,
        pre_ping: bool = False,
        lock_timeout: float = 0.0,
        idle_in_transaction_session_timeout: float = 5.0,
        read_attempts: int = 3,
        application_name: str = "esox",
        get_password_func: Callable[[], str] | None = None,
        single_row_tracking: bool = True,
        enable_db_functions: bool = False,
        pool_open_timeout: float | None = None,
        listen_notify: bool = True,
        poll_interval: float | None = None,
    ) -> None:
        if originator_id_type not in ("uuid", "text"):
            msg = (
                "originator_id_type must be 'uuid' or 'text', "
                f"not {originator_id_type!r}"
            )
            raise ValueError(msg)
        schema = schema.strip() or "public"
        self.schema = check_identifier(schema, "schema")
        self.originator_id_type = originator_id_type
        self.pre_ping = pre_ping
        self.read_attempts = max(1, read_attempts)
        self.single_row_tracking = single_row_tracking
        """Whether tracking recorders keep one row per upstream application
        (eventsourcing 9.5's layout, the default) or eventsourcing's older
        layout, a row per processed notification (``False``)."""
        self.enable_db_functions = enable_db_functions
        """eventsourcing's option; esox's statements need no functions of
        their own in the database, so it changes nothing."""
        self.pool_open_timeout = pool_open_timeout
        """eventsourcing's option: esox opens its pool on first use, which
        waits ``connect_timeout`` at most for the server."""
        self.connect_kwargs: dict[str, Any] = {
            "dbname": dbname,
            "host": host,
            "port": port,
            "user": user,
            "password": password,
            # libpq takes whole seconds, and treats 1 as 2.
            "connect_timeout": max(2, round(connect_timeout)),
            "application_name": application_name,
            "autocommit": True,
            "context": ADAPTERS,
        }
        self.connect_kwargs = {
            k: v for k, v in self.connect_kwargs.items() if v is not None
        }
        self._lock_timeout = lock_timeout
        self._idle_timeout = idle_in_transaction_session_timeout
        self._set_options()
        self.pool: ConnectionPool = ConnectionPool(
            kwargs=self.connect_kwargs,
            get_password_func=get_password_func,
            min_size=pool_size,
            max_size=pool_size + max_overflow,
            max_waiting=max_waiting,
            timeout=pool_timeout,
            max_lifetime=conn_max_age,
            open=False,
            name=f"esox-{application_name}",
        )
        self._opened = False
        self._lock = threading.Lock()
        self._sweeping = threading.Lock()
        # What holds connections: closed by close(), or when the datastore
        # is garbage (an application dropped without close(), as tests do):
        # none of them refers back to the datastore, so it can become garbage.
        self._parts = _Parts(self.pool)
        weakref.finalize(self, self._parts.close_later).atexit = False
        self.listen_notify = listen_notify
        """Whether waiters are woken by LISTEN (else they only poll: for
        connection poolers in transaction mode, where LISTEN does not work)."""
        if poll_interval is None:
            poll_interval = Listener.POLL_INTERVAL if listen_notify else 0.1
        if not (poll_interval > 0) or math.isinf(poll_interval):
            msg = (
                "poll_interval must be a positive number of seconds, "
                f"not {poll_interval!r}"
            )
            raise ValueError(msg)
        self.poll_interval = poll_interval
        """The longest a waiter goes without checking the database."""

    @property
    def lock_timeout(self) -> float:
        """Seconds a statement waits for a lock before it fails (0: no limit);
        set, it applies to connections opened afterwards."""
        return self._lock_timeout

    @lock_timeout.setter
    def lock_timeout(self, seconds: float) -> None:
        self._lock_timeout = seconds
        self._set_options()

    @property
    def idle_in_transaction_session_timeout(self) -> float:
        """Seconds a transaction may stay idle before the server ends its
        session (0: no limit); set, it applies to connections opened afterwards."""
        return self._idle_timeout

    @idle_in_transaction_session_timeout.setter
    def idle_in_transaction_session_timeout(self, seconds: float) -> None:
        self._idle_timeout = seconds
        self._set_options()

    def _set_options(self) -> None:
        # The pool holds this very dict: new connections get the options.
        self.connect_kwargs["options"] = (
            f"-c lock_timeout={int(self._lock_timeout * 1000)} "
            "-c idle_in_transaction_session_timeout="
            f"{int(self._idle_timeout * 1000)}"
        )

    # Connections.

    def _open(self) -> None:
        with self._lock:
            if not self._opened:
                # One connection first, so that a down server, an unknown
                # database or role, or a wrong password fails this use within
                # the connect timeout with the server's own message (the pool
                # would retry in the background, and time out much later).
                self.probe()
                # Don't wait for min_size connections: the first use waits
                # for one.
                self.pool.open(wait=False)
                self._opened = True

    def describe_target(self) -> str:
        """Where connections go: database, host, port and user (no password)."""
        kwargs = self.connect_kwargs
        host = kwargs.get("host") or "the default host"
        port = kwargs.get("port") or 5432
        user = kwargs.get("user")
        as_user = f" as user {user!r}" if user else ""
        return f"PostgreSQL database {kwargs['dbname']!r} at {host}:{port}{as_user}"

    def probe(self) -> None:
        """Connect once, or raise OperationalError saying where and why not."""
        try:
            self.connect().close()
        except psycopg.Error as e:
            reason = str(e).strip() or type(e).__name__
            password = self.connect_kwargs.get("password")
            if password:
                reason = reason.replace(password, "<redacted>")
            msg = (
                f"Could not connect to {self.describe_target()} (within "
                f"POSTGRES_CONNECT_TIMEOUT={self.connect_kwargs['connect_timeout']}s): "
                f"{reason}"
            )
            raise OperationalError(msg) from None

    def _getconn(self) -> Connection:
        """A connection from the pool that is not known to be dead."""
        if not self._opened:
            self._open()
        for _ in range(self.pool.max_size + 1):
            conn = self._getconn_or_probe()
            if not self.pre_ping and not _has_pending_input(conn):
                return conn
            try:
                conn.execute("")
            except psycopg.Error:
                # Broken: the pool discards it and makes a new one. Its
                # idle siblings probably died too (server restart).
                self.pool.putconn(conn)
                self.sweep()
            else:
                return conn
        return self._getconn_or_probe()

    def _getconn_or_probe(self) -> Connection:
        try:
            return self.pool.getconn()
        except psycopg_pool.PoolTimeout:
            # No connection came: if the server cannot be reached, say so
            # (a busy pool is the other reason, and the advice that follows).
            self.probe()
            raise

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A pool connection, returned afterwards (psycopg errors untranslated)."""
        conn = self._getconn()
        try:
            yield conn
        finally:
            self.pool.putconn(conn)

    @contextmanager
    def get_connection(self) -> Iterator[psycopg.Connection[DictRow]]:
        """A pool connection whose cursors give rows as dicts, in autocommit
        mode, as eventsourcing's ``PostgresDatastore.get_connection``: for SQL
        of your own. psycopg errors raised in the block become esox's
        persistence errors (``IntegrityError``, ``ProgrammingError``...).
        A transaction the block began (``BEGIN``) and left open is committed
        when the block ends, or rolled back if it raises, as psycopg's
        ``with connection:`` does."""
        with translated("a datastore connection"), self.connection() as conn:
            conn.row_factory = dict_row  # type: ignore[assignment]
            try:
                yield cast("psycopg.Connection[DictRow]", conn)
                if _in_transaction(conn):
                    conn.execute("COMMIT")
            finally:
                # esox's own statements read rows as tuples.
                conn.row_factory = tuple_row
                if _in_transaction(conn):
                    with suppress(psycopg.Error):
                        conn.execute("ROLLBACK")

    @contextmanager
    def transaction(self, *, commit: bool = False) -> Iterator[psycopg.Cursor[DictRow]]:
        """A cursor (rows as dicts) in a transaction, committed on exit if
        ``commit``, else rolled back, as eventsourcing's
        ``PostgresDatastore.transaction``; psycopg errors become esox's."""
        with (
            translated("a datastore transaction"),
            self.connection() as conn,
            conn.transaction(force_rollback=not commit),
            conn.cursor(row_factory=dict_row) as cursor,
        ):
            yield cursor

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def sweep(self) -> None:
        """Replace broken idle connections in the pool (after a connection loss)."""
        if not self._sweeping.acquire(blocking=False):
            return
        try:
            self.pool.check()
        except Exception:  # best effort: the next use reports a real failure
            logger.debug("checking the pool failed", exc_info=True)
        finally:
            self._sweeping.release()

    def connect(self) -> Connection:
        """A new connection outside the pool (for LISTEN)."""
        return _connect(self.connect_kwargs, self.pool.get_password_func)

    def _connector(self) -> Callable[[], Connection]:
        """``connect``, for a thread: without a reference to the datastore,
        which can then become garbage while the thread runs."""
        return functools.partial(
            _connect, self.connect_kwargs, self.pool.get_password_func
        )

    # Running statements.

    def _run(self, func: Callable[[Connection], T]) -> T:
        """Run ``func`` with a pool connection, left idle and usable if it raises."""
        with self.connection() as conn:
            try:
                return func(conn)
            except psycopg.Error as e:
                _recover(conn, e)
                raise

    def read(self, what: str, func: Callable[[Connection], T]) -> T:
        """Run ``func`` with a connection; retry if the connection was lost."""
        failures = refreshed = 0
        while True:
            try:
                return self._run(func)
            except psycopg.Error as e:
                # Each stale connection is refreshed once (by _recover).
                if is_stale_statement(e) and refreshed <= self.pool.max_size:
                    refreshed += 1
                    continue
                if is_connection_error(e) and failures + 1 < self.read_attempts:
                    failures += 1
                    self.sweep()
                    time.sleep(0.05 * 2**failures)
                    continue
                raise translate_error(e, what) from e

    def write(
        self,
        what: str,
        func: Callable[[Connection], T],
        committed: Callable[[Connection], tuple[T] | None] | None = None,
    ) -> T:
        """Run ``func`` with a connection; never run it again after it may
        have committed.

        A statement that failed because a prepared statement was stale (its
        transaction rolled back, nothing written) is run again. A write that
        lost its connection is run again only if ``committed`` is given: on
        a new connection, ``committed`` tells whether the lost write was
        committed (its result, in a 1-tuple) or not (None, and then ``func``
        runs again); without it, the error says the outcome is unknown.
        """
        refreshed = 0
        while True:
            try:
                return self._run(func)
            except psycopg.Error as e:
                if is_stale_statement(e) and refreshed <= self.pool.max_size:
                    refreshed += 1
                    continue
                if is_connection_error(e):
                    self.sweep()
                    if committed is not None:
                        return self._rewrite(what, func, committed, e)
                raise translate_error(e, what, writing=True) from e

    def _rewrite(
        self,
        what: str,
        func: Callable[[Connection], T],
        committed: Callable[[Connection], tuple[T] | None],
        lost: psycopg.Error,
    ) -> T:
        """After ``func`` lost its connection: its result if it committed,
        else ``func`` run again (up to ``read_attempts`` connections).

        A lost write that is still in flight on the server (its connection
        broke, its backend lives on) is not seen by ``committed``; the write
        run again then waits for it on the table's unique keys, and fails
        with a unique violation if it commits, so ``committed`` is asked
        once more before that error is raised.
        """

        def again(conn: Connection) -> T:
            found = committed(conn)
            return found[0] if found is not None else func(conn)

        error = lost
        for failures in range(1, self.read_attempts + 1):
            time.sleep(0.05 * 2**failures)
            try:
                return self._run(again)
            except psycopg.errors.UniqueViolation as e:
                found = self.read(what, committed)
                if found is not None:
                    return found[0]
                raise translate_error(e, what, writing=True) from e
            except psycopg.Error as e:
                retry = is_connection_error(e) or is_stale_statement(e)
                if not (retry or isinstance(e, psycopg_pool.PoolTimeout)):
                    raise translate_error(e, what, writing=True) from e
                self.sweep()
                error = e
        msg = (
            f"{what}: the connection was lost, and {self.read_attempts} attempts "
            "to find out whether the transaction was committed failed; it may "
            f"or may not have been [{describe_error(lost)}; "
            f"then {describe_error(error)}]"
        )
        raise OperationalError(msg) from error

    @property
    def listener(self) -> Listener:
        """The LISTEN connection's thread (started on first use), or, in
        poll-only mode, timed polls."""
        parts = self._parts
        with parts.lock:
            if parts.listener is None:
                parts.listener = Listener(
                    self._connector(),
                    listen=self.listen_notify,
                    poll_interval=self.poll_interval,
                )
            return parts.listener

    def notify(self, *channels: str) -> None:
        """NOTIFY ``channels`` soon, after the caller's commit, from another thread."""
        parts = self._parts
        with parts.lock:
            notifier = parts.notifier
            if notifier is None:
                notifier = parts.notifier = Notifier(self._connector())
        notifier.notify(channels)

    def close(self) -> None:
        """Send pending NOTIFYs, stop listening and close every connection."""
        self._parts.close()


class _Parts:
    """A datastore's connection pool and threads, apart from the datastore,
    so that a finalizer can close them when the datastore is garbage."""

    def __init__(self, pool: psycopg_pool.ConnectionPool[Connection]) -> None:
        self.pool = pool
        self.lock = threading.Lock()
        self.listener: Listener | None = None
        self.notifier: Notifier | None = None

    def close(self) -> None:
        with self.lock:
            listener, self.listener = self.listener, None
            notifier, self.notifier = self.notifier, None
        if notifier is not None:
            notifier.close()
        if listener is not None:
            listener.close()
        self.pool.close()

    def close_later(self) -> None:
        """close() in a thread of its own: the finalizer may run in one of
        the threads close() joins (a pool worker's, the notifier's), or in
        the middle of a garbage collection."""
        threading.Thread(target=self.close, name="esox-postgres-close").start()


def _in_transaction(conn: Connection) -> bool:
    """Whether a live connection is inside a transaction (open or failed)."""
    return not (conn.closed or conn.broken) and conn.pgconn.transaction_status in (
        TransactionStatus.INTRANS,
        TransactionStatus.INERROR,
    )


def _recover(conn: Connection, error: psycopg.Error) -> None:
    """Leave a connection that raised ``error`` idle and usable, if it still lives."""
    if conn.broken or conn.closed:
        return
    try:
        if conn.pgconn.transaction_status != TransactionStatus.IDLE:
            # psycopg forgets its prepared statements on seeing the ROLLBACK.
            conn.execute("ROLLBACK")
        if is_stale_statement(error):
            # Also forgets psycopg's cache, so statements are prepared afresh.
            conn.execute("DEALLOCATE ALL")
    except psycopg.Error:
        with suppress(psycopg.Error):
            conn.close()
