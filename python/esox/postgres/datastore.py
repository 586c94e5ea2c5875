"""The PostgreSQL datastore: a connection pool, error translation and LISTEN.

Every psycopg error raised by a recorder passes through ``translate_error``,
the one place where it becomes one of esox's persistence errors. Reads that
lose their connection are retried a bounded number of times; writes never are,
because the COMMIT may already have reached the server.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Self, TypeAlias, TypeVar, cast

import psycopg
import psycopg.errors
import psycopg_pool
from psycopg import sql
from psycopg.adapt import AdaptersMap
from psycopg.pq import ExecStatus, TransactionStatus
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg.types.numeric import Int8BinaryDumper, Int8Dumper

from esox.persistence.errors import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
)

__all__ = ["PostgresDatastore", "check_identifier", "quote", "translate_error"]

logger = logging.getLogger(__name__)

Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]
T = TypeVar("T")

# PostgreSQL silently truncates longer identifiers (NAMEDATALEN - 1).
MAX_IDENTIFIER_BYTES = 63

# Python ints are sent as bigint, whatever their size: every integer column is
# bigint, and one type per parameter means one prepared statement per query
# (psycopg would otherwise pick int2, int4 or int8 by value).
ADAPTERS = AdaptersMap(psycopg.adapters)
ADAPTERS.register_dumper(int, Int8Dumper)
ADAPTERS.register_dumper(int, Int8BinaryDumper)


def check_identifier(name: object, what: str) -> str:
    """Return ``name`` if it can be a PostgreSQL identifier, else ProgrammingError.

    Any characters are allowed (identifiers are always quoted), except NUL;
    names longer than 63 bytes are refused rather than silently truncated.
    """
    if not isinstance(name, str) or not name:
        msg = f"{what} must be a non-empty string, got {name!r}"
        raise ProgrammingError(msg)
    if "\x00" in name:
        msg = f"{what} {name!r} contains a NUL character"
        raise ProgrammingError(msg)
    size = len(name.encode())
    if size > MAX_IDENTIFIER_BYTES:
        msg = (
            f"{what} {name!r} is {size} bytes long; PostgreSQL identifiers are "
            f"at most {MAX_IDENTIFIER_BYTES} bytes"
        )
        raise ProgrammingError(msg)
    return name


def quote(*names: str, params: bool = False) -> str:
    """Quote a (qualified) identifier with psycopg's ``sql.Identifier``.

    With ``params``, ``%`` is doubled: the text goes into a query that psycopg
    scans for ``%s`` placeholders, and a name must never be mistaken for one.
    """
    quoted = sql.Identifier(*names).as_string(None)
    return quoted.replace("%", "%%") if params else quoted


# How errors are classified.

_CONNECTION_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})
_UNIQUE_KEY = re.compile(r"Key \((?P<cols>.*?)\)=\((?P<vals>.*), (?P<version>-?\d+)\)")


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error`` means the connection was lost (not a pool timeout)."""
    if isinstance(
        error,
        psycopg_pool.PoolTimeout
        | psycopg_pool.PoolClosed
        | psycopg.errors.PipelineAborted,
    ):
        return False
    if not isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    state = error.sqlstate
    return state is None or state.startswith("08") or state in _CONNECTION_LOST_STATES


def is_stale_statement(error: BaseException) -> bool:
    """Whether a prepared statement went stale (table changed under it, or gone)."""
    if isinstance(error, psycopg.errors.InvalidSqlStatementName):
        return True
    return isinstance(error, psycopg.errors.FeatureNotSupported) and (
        "cached plan must not change result type" in str(error)
    )


def _describe(error: psycopg.Error) -> str:
    text = error.diag.message_primary or str(error).strip() or type(error).__name__
    if error.sqlstate:
        return f"{text} [{type(error).__name__}, SQLSTATE {error.sqlstate}]"
    return f"{text} [{type(error).__name__}]"


def translate_error(
    error: psycopg.Error, what: str, *, writing: bool = False
) -> PersistenceError:
    """The esox persistence error for a psycopg error; ``what`` names the operation."""
    if isinstance(error, psycopg.errors.UniqueViolation):
        match = _UNIQUE_KEY.search(error.diag.message_detail or "")
        if match and match["cols"] == "originator_id, originator_version":
            msg = (
                f"{what}: stored event already recorded: originator_id "
                f"{match['vals']} version {match['version']}"
            )
            return IntegrityError(msg)
        return IntegrityError(f"{what}: {_describe(error)}")
    if isinstance(error, psycopg.IntegrityError):
        return IntegrityError(f"{what}: {_describe(error)}")
    if isinstance(error, psycopg_pool.PoolClosed):
        return InterfaceError(f"{what}: the datastore is closed")
    if isinstance(error, psycopg_pool.PoolTimeout):
        msg = (
            f"{what}: no database connection became available ({error}); "
            "consider raising POSTGRES_POOL_SIZE or POSTGRES_MAX_OVERFLOW"
        )
        return OperationalError(msg)
    if isinstance(error, psycopg.errors.LockNotAvailable):
        msg = (
            f"{what}: lock timeout (POSTGRES_LOCK_TIMEOUT) expired; nothing was "
            f"written [{_describe(error)}]"
        )
        return OperationalError(msg)
    if writing and is_connection_error(error):
        msg = (
            f"{what}: the connection was lost, so the transaction may or may not "
            f"have been committed; not retried [{_describe(error)}]"
        )
        return OperationalError(msg)
    if isinstance(error, psycopg.errors.UndefinedTable):
        msg = f"{what}: {_describe(error)} (create it, or set CREATE_TABLE=yes)"
        return ProgrammingError(msg)
    for psycopg_class, esox_class in _ERROR_CLASSES:
        if isinstance(error, psycopg_class):
            return esox_class(f"{what}: {_describe(error)}")
    return PersistenceError(f"{what}: {_describe(error)}")


_ERROR_CLASSES: tuple[tuple[type[psycopg.Error], type[PersistenceError]], ...] = (
    (psycopg.InterfaceError, InterfaceError),
    (psycopg.OperationalError, OperationalError),
    (psycopg.DataError, DataError),
    (psycopg.InternalError, InternalError),
    (psycopg.ProgrammingError, ProgrammingError),
    (psycopg.NotSupportedError, NotSupportedError),
    (psycopg.DatabaseError, DatabaseError),
)


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
        with _translated("a datastore connection"), self.connection() as conn:
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
            _translated("a datastore transaction"),
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

    # Running statements.

    def read(self, what: str, func: Callable[[Connection], T]) -> T:
        """Run ``func`` with a connection; retry if the connection was lost."""
        failures = refreshed = 0
        while True:
            try:
                with self.connection() as conn:
                    try:
                        return func(conn)
                    except psycopg.Error as e:
                        _recover(conn, e)
                        raise
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
                with self.connection() as conn:
                    try:
                        return func(conn)
                    except psycopg.Error as e:
                        _recover(conn, e)
                        raise
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
        error = lost
        for failures in range(1, self.read_attempts + 1):
            time.sleep(0.05 * 2**failures)
            try:
                with self.connection() as conn:
                    try:
                        found = committed(conn)
                        return found[0] if found is not None else func(conn)
                    except psycopg.Error as e:
                        _recover(conn, e)
                        raise
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
            f"or may not have been [{_describe(lost)}; then {_describe(error)}]"
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
                    functools.partial(
                        _connect, self.connect_kwargs, self.pool.get_password_func
                    ),
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
                connect = functools.partial(
                    _connect, self.connect_kwargs, self.pool.get_password_func
                )
                notifier = parts.notifier = Notifier(connect)
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


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """psycopg errors raised in the block as esox's persistence errors."""
    try:
        yield
    except psycopg.Error as e:
        raise translate_error(e, what) from e


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


class Listener:
    """One LISTEN connection per datastore, waking threads that wait on channels.

    Each channel has a generation number, bumped by every NOTIFY on it, and
    also whenever a notification may have been missed (LISTEN just started,
    the connection was lost). A waiter reads the generation, checks the
    database, and then waits for the generation to change. Waits are capped
    (``poll_interval`` while listening, 50ms while LISTEN is not in place),
    so a lost NOTIFY delays a waiter, never blocks it. Without ``listen``
    (poll-only mode) no LISTEN connection is opened: waits last
    ``poll_interval`` at most.
    """

    POLL_INTERVAL = 1.0
    FALLBACK_POLL_INTERVAL = 0.05
    LOOP_TIMEOUT = 0.25

    def __init__(
        self,
        connect: Callable[[], Connection],
        *,
        listen: bool = True,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._connect = connect
        self.listen = listen
        self.poll_interval = poll_interval
        self._cond = threading.Condition()
        self._generations: dict[str, int] = {}
        self._listening: frozenset[str] = frozenset()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def generation(self, channel: str) -> int:
        """The channel's current generation; starts listening to it."""
        with self._cond:
            if self._closed.is_set():
                msg = "the datastore is closed"
                raise InterfaceError(msg)
            generation = self._generations.setdefault(channel, 0)
            if self._thread is None and self.listen:
                self._thread = threading.Thread(
                    target=self._run, name="esox-postgres-listener", daemon=True
                )
                self._thread.start()
            return generation

    def wait(
        self,
        channel: str,
        generation: int,
        timeout: float,
        interrupt: threading.Event | None = None,
    ) -> None:
        """Return when ``channel`` passed ``generation``, or a poll interval ends."""
        with self._cond:
            if channel in self._listening or not self.listen:
                timeout = min(timeout, self.poll_interval)
            else:
                timeout = min(timeout, self.FALLBACK_POLL_INTERVAL, self.poll_interval)
            self._cond.wait_for(
                lambda: (
                    self._generations.get(channel) != generation
                    or self._closed.is_set()
                    or (interrupt is not None and interrupt.is_set())
                ),
                timeout=max(timeout, 0.0),
            )

    def poke(self) -> None:
        """Wake every waiter (to notice an interrupt)."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the thread and close its connection."""
        self._closed.set()
        self.poke()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.LOOP_TIMEOUT * 4)

    def _bump(self, channels: set[str] | None) -> None:
        with self._cond:
            for channel in self._generations if channels is None else channels:
                if channel in self._generations:
                    self._generations[channel] += 1
            self._cond.notify_all()

    def _run(self) -> None:
        delay = 0.05
        while not self._closed.is_set():
            try:
                conn = self._connect()
            except psycopg.Error:
                logger.debug("LISTEN connection failed", exc_info=True)
            else:
                delay = 0.05
                try:
                    with conn:
                        self._listen(conn)
                except psycopg.Error:
                    logger.debug("LISTEN connection lost", exc_info=True)
                finally:
                    with self._cond:
                        self._listening = frozenset()
                    # Whatever was notified meanwhile is unknown: waiters recheck.
                    self._bump(None)
            if self._closed.wait(delay):
                return
            delay = min(delay * 2, 2.0)

    def _listen(self, conn: Connection) -> None:
        listening: set[str] = set()
        while not self._closed.is_set():
            with self._cond:
                new = set(self._generations) - listening
            for channel in sorted(new):
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                listening.add(channel)
            if new:
                with self._cond:
                    self._listening = frozenset(listening)
                # Something may have been committed before LISTEN took effect.
                self._bump(new)
            for notify in conn.notifies(timeout=self.LOOP_TIMEOUT):
                self._bump({notify.channel})
                if self._closed.is_set() or len(self._generations) > len(listening):
                    break


class Notifier:
    """Sends NOTIFYs after the writers' commits, from a thread and connection
    of its own.

    A NOTIFY inside a writing transaction takes PostgreSQL's database-wide
    notify lock at commit and holds it through the commit's WAL flush, so
    notifying writers cannot share a flush: they commit one at a time. Sent
    afterwards, in a transaction that writes nothing, it costs no flush.
    Channels that writers ask for meanwhile are sent together. A NOTIFY that
    is lost (the connection fails) only delays waiters until their next poll.
    """

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect
        self._cond = threading.Condition()
        self._pending: set[str] = set()
        self._sending = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None

    def notify(self, channels: Iterable[str]) -> None:
        """Queue ``channels`` to be notified (at once, if the thread is idle)."""
        with self._cond:
            if self._closed:
                return
            self._pending.update(channels)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="esox-postgres-notifier", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        """Send what is pending, then stop the thread and close its connection."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending) or self._closed)
                channels, self._pending = sorted(self._pending), set()
                closed = self._closed
            if channels:
                self._send(channels)
            if closed:
                with self._cond:
                    if not self._pending:
                        break
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(psycopg.Error):
                conn.close()

    def _send(self, channels: list[str]) -> None:
        # One simple query straight through libpq: a cursor's machinery
        # would cost the writers' process more CPU than the NOTIFY itself.
        query = "; ".join(
            sql.SQL("NOTIFY {}").format(sql.Identifier(c)).as_string(None)
            for c in channels
        ).encode()
        for attempt in range(2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                result = self._conn.pgconn.exec_(query)
                if result.status != ExecStatus.COMMAND_OK:
                    raise psycopg.OperationalError(result.get_error_message())
            except psycopg.Error:
                logger.debug("NOTIFY failed (attempt %d)", attempt + 1, exc_info=True)
                if self._conn is not None:
                    with suppress(psycopg.Error):
                        self._conn.close()
                    self._conn = None
            else:
                return
