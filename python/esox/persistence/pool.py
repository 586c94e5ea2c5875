"""A generic, thread-safe connection pool, for recorders of other datastores.

eventsourcing users subclass ``ConnectionPool`` (implementing
``_create_connection``) and ``Connection`` (``commit``, ``rollback``,
``cursor``, ``_close``) for their own databases; esox keeps the same API and
behaviour:

- at most ``pool_size + max_overflow`` connections are in use at once; at
  most ``pool_size`` idle ones are kept, the others are closed when returned;
- requests are served in the order they were made (one waiter at a time
  holds the pool's semaphore), each within its timeout;
- ``is_writer=True`` requests are served one at a time; with
  ``mutually_exclusive_read_write``, readers and the writer exclude each other;
- a connection older than ``max_age`` is closed once it is not in use;
  ``pre_ping`` checks an idle connection with ``SELECT 1`` before handing it out.

esox's own SQLite and PostgreSQL recorders keep their connections in Rust and
psycopg; this pool is for code written against eventsourcing's API.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from time import monotonic
from typing import Any, Generic, TypeVar

from esox.domain import EventSourcingError
from esox.persistence.errors import OperationalError

__all__ = [
    "Connection",
    "ConnectionNotFromPoolError",
    "ConnectionPool",
    "ConnectionPoolClosedError",
    "ConnectionUnavailableError",
    "Cursor",
    "Params",
]

Params = Sequence[Any] | Mapping[str, Any]
"""Statement parameters: positional (a sequence) or named (a mapping)."""


class ConnectionPoolClosedError(EventSourcingError):
    """The connection pool was used after it was closed."""


class ConnectionNotFromPoolError(EventSourcingError):
    """A connection was returned to a pool that did not issue it."""


class ConnectionUnavailableError(OperationalError, TimeoutError):
    """No connection could be issued within the timeout (the message says
    what the request was waiting for)."""


class Cursor(ABC):
    """Executes statements and fetches their results."""

    @abstractmethod
    def execute(self, statement: str | bytes, params: Params | None = None) -> None:
        """Execute one statement."""

    @abstractmethod
    def fetchall(self) -> Any:
        """All (remaining) rows of the last statement."""

    @abstractmethod
    def fetchone(self) -> Any:
        """The next row of the last statement, or None."""


TCursor = TypeVar("TCursor", bound=Cursor)


class Connection(ABC, Generic[TCursor]):
    """A database connection as a pool hands it out.

    ``in_use`` is held while the connection is issued (a new connection starts
    held); the ``max_age`` timer closes the connection only once it is free.
    """

    def __init__(self, max_age: float | None = None) -> None:
        self._closed = False
        self._expired = threading.Event()
        self._close_lock = threading.Lock()
        self.in_use = threading.Lock()
        self.in_use.acquire()
        self.is_writer: bool | None = None
        self._max_age_timer: threading.Timer | None = None
        if max_age is not None:
            timer = threading.Timer(max_age, self._close_when_free)
            timer.daemon = True
            self._max_age_timer = timer
            timer.start()

    @property
    def closed(self) -> bool:
        """Whether the connection has been closed."""
        return self._closed

    @property
    def closing(self) -> bool:
        """Whether the connection has outlived ``max_age`` (it closes when free)."""
        return self._expired.is_set()

    @abstractmethod
    def commit(self) -> None:
        """Commit the current transaction."""

    @abstractmethod
    def rollback(self) -> None:
        """Roll back the current transaction."""

    @abstractmethod
    def cursor(self) -> TCursor:
        """A new cursor on this connection."""

    def close(self) -> None:
        """Close the connection (once; later calls do nothing more)."""
        with self._close_lock:
            self._close()

    @abstractmethod
    def _close(self) -> None:
        """Close the underlying connection; subclasses call this last."""
        self._closed = True
        timer = self._max_age_timer
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()

    def _close_when_free(self) -> None:
        self._expired.set()
        with self.in_use:
            if not self._closed:
                self.close()


TConnection = TypeVar("TConnection", bound=Connection[Any])


class ConnectionPool(ABC, Generic[TConnection]):
    """Issues connections fairly, within limits and timeouts; subclasses
    implement ``_create_connection``."""

    def __init__(
        self,
        *,
        pool_size: int = 5,
        max_overflow: int = 10,
        pool_timeout: float = 30.0,
        max_age: float | None = None,
        pre_ping: bool = False,
        mutually_exclusive_read_write: bool = False,
    ) -> None:
        if pool_size < 0 or max_overflow < 0:
            msg = (
                "pool_size and max_overflow must not be negative, "
                f"got {pool_size} and {max_overflow}"
            )
            raise ValueError(msg)
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.pool_timeout = pool_timeout
        self.max_age = max_age
        self.pre_ping = pre_ping
        self._mutually_exclusive_read_write = mutually_exclusive_read_write
        self._closed = False
        self._idle: deque[TConnection] = deque()
        self._issued: dict[int, TConnection] = {}
        # One request at a time waits for a connection; the others queue here
        # in arrival order.
        self._get_semaphore = threading.Semaphore()
        self._returned = threading.Condition()
        self._writer_lock = threading.Lock()
        self._readers_changed = threading.Condition()
        self._num_writers = 0
        self._num_readers = 0

    @property
    def closed(self) -> bool:
        """Whether the pool has been closed."""
        return self._closed

    @property
    def num_in_use(self) -> int:
        """The number of connections issued and not yet returned."""
        with self._returned:
            return len(self._issued)

    @property
    def num_in_pool(self) -> int:
        """The number of idle connections kept for reuse."""
        with self._returned:
            return len(self._idle)

    @abstractmethod
    def _create_connection(self) -> TConnection:
        """A new connection, with its ``in_use`` lock held."""

    def get_connection(
        self, timeout: float | None = None, *, is_writer: bool | None = None
    ) -> TConnection:
        """A connection, within ``timeout`` seconds (default ``pool_timeout``).

        ``is_writer=True`` asks for the one writer, ``False`` for a reader,
        None for neither. Raises ConnectionUnavailableError on timeout.
        """
        if self._closed:
            msg = "Connection pool is closed"
            raise ConnectionPoolClosedError(msg)
        deadline = monotonic() + (self.pool_timeout if timeout is None else timeout)
        if not self._get_semaphore.acquire(timeout=_remaining(deadline)):
            msg = "Timed out waiting for connection pool semaphore"
            raise ConnectionUnavailableError(msg)
        try:
            self._take_role(is_writer, deadline)
            try:
                conn = self._checkout(deadline)
            except BaseException:
                self._give_back_role(is_writer)
                raise
            conn.is_writer = is_writer
            return conn
        finally:
            self._get_semaphore.release()

    def _take_role(self, is_writer: bool | None, deadline: float) -> None:
        if is_writer is None:
            return
        needs_writer_lock = is_writer or self._mutually_exclusive_read_write
        if needs_writer_lock and not self._writer_lock.acquire(
            timeout=_remaining(deadline)
        ):
            msg = "Timed out waiting for return of writer"
            raise ConnectionUnavailableError(msg)
        if is_writer:
            if self._mutually_exclusive_read_write:
                with self._readers_changed:
                    if not _wait_for(
                        self._readers_changed, lambda: self._num_readers == 0, deadline
                    ):
                        self._writer_lock.release()
                        msg = "Timed out waiting for return of reader"
                        raise ConnectionUnavailableError(msg)
            self._num_writers += 1
        else:
            if self._mutually_exclusive_read_write:
                # Only passed through: readers wait while a writer is out.
                self._writer_lock.release()
            with self._readers_changed:
                self._num_readers += 1

    def _give_back_role(self, is_writer: bool | None) -> None:
        if is_writer is True:
            self._num_writers -= 1
            self._writer_lock.release()
        elif is_writer is False:
            with self._readers_changed:
                self._num_readers -= 1
                if self._num_readers == 0:
                    self._readers_changed.notify_all()

    def _checkout(self, deadline: float) -> TConnection:
        with self._returned:
            while True:
                if self._closed:
                    msg = "Connection pool is closed"
                    raise ConnectionPoolClosedError(msg)
                if self._idle:
                    conn = self._idle.popleft()
                    conn.in_use.acquire()
                    if conn.closed or (self.pre_ping and not _answers(conn)):
                        conn.in_use.release()
                        continue
                elif len(self._issued) < self.pool_size + self.max_overflow:
                    conn = self._create_connection()
                else:
                    if not _wait_for(
                        self._returned,
                        lambda: (
                            bool(self._idle)
                            or self._closed
                            or len(self._issued) < self.pool_size + self.max_overflow
                        ),
                        deadline,
                    ):
                        msg = "Timed out waiting for return of connection"
                        raise ConnectionUnavailableError(msg)
                    continue
                self._issued[id(conn)] = conn
                return conn

    def put_connection(self, conn: TConnection) -> None:
        """Return a connection: kept for reuse if the pool has room and the
        connection is open and not expired, otherwise closed."""
        is_writer, conn.is_writer = conn.is_writer, None
        with self._returned:
            if self._closed:
                msg = "Pool is closed"
                raise ConnectionPoolClosedError(msg)
            if self._issued.get(id(conn)) is not conn:
                msg = "Connection not in use in this pool"
                raise ConnectionNotFromPoolError(msg)
            del self._issued[id(conn)]
            if not conn.closed:
                if conn.closing or len(self._idle) >= self.pool_size:
                    conn.close()
                else:
                    self._idle.append(conn)
            conn.in_use.release()
            self._returned.notify()
        self._give_back_role(is_writer)

    def close(self) -> None:
        """Close every connection, issued or idle; the pool issues no more."""
        with self._returned:
            if self._closed:
                return
            self._closed = True
            for conn in list(self._issued.values()):
                conn.close()
            while self._idle:
                self._idle.popleft().close()
            self._returned.notify_all()

    def __del__(self) -> None:
        # A pool dropped without close() still closes its connections.
        if not getattr(self, "_closed", True):
            self.close()


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - monotonic())


def _wait_for(condition: threading.Condition, predicate: Any, deadline: float) -> bool:
    """Wait on a held condition until the predicate holds or the deadline passes."""
    while not predicate():
        remaining = deadline - monotonic()
        if remaining <= 0:
            return False
        condition.wait(remaining)
    return True


def _answers(conn: Connection[Any]) -> bool:
    """Whether an idle connection still works (closing it if not)."""
    try:
        conn.cursor().execute("SELECT 1")
    except Exception:
        conn.close()
        return False
    return True
