"""esox.persistence.ConnectionPool, subclassed as a user would for a datastore
of their own (here Python's sqlite3 on a real file)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from esox.persistence import (
    Connection,
    ConnectionNotFromPoolError,
    ConnectionPool,
    ConnectionPoolClosedError,
    ConnectionUnavailableError,
    Cursor,
    OperationalError,
    Params,
)


class FileCursor(Cursor):
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, statement: str | bytes, params: Params | None = None) -> None:
        sql = statement.decode() if isinstance(statement, bytes) else statement
        self._cursor.execute(sql, params or ())

    def fetchall(self) -> Any:
        return self._cursor.fetchall()

    def fetchone(self) -> Any:
        return self._cursor.fetchone()


class FileConnection(Connection[FileCursor]):
    def __init__(self, path: str, max_age: float | None) -> None:
        super().__init__(max_age=max_age)
        self.sqlite = sqlite3.connect(path, check_same_thread=False)
        _opened.append(self.sqlite)

    def commit(self) -> None:
        self.sqlite.commit()

    def rollback(self) -> None:
        self.sqlite.rollback()

    def cursor(self) -> FileCursor:
        return FileCursor(self.sqlite.cursor())

    def _close(self) -> None:
        self.sqlite.close()
        super()._close()


class FilePool(ConnectionPool[FileConnection]):
    def __init__(self, path: Path, **options: Any) -> None:
        super().__init__(**options)
        self.path = str(path)
        self.created = 0

    def _create_connection(self) -> FileConnection:
        self.created += 1
        return FileConnection(self.path, self.max_age)


# Every sqlite3 connection the tests open, closed after each test (Python
# 3.13 warns of an unclosed one, and warnings are errors).
_opened: list[sqlite3.Connection] = []


@pytest.fixture(autouse=True)
def _close_opened() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "pool.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.commit()
    return path


def test_connections_are_reused_and_write_to_the_file(db_path: Path) -> None:
    pool = FilePool(db_path, pool_size=1, max_overflow=0)
    conn = pool.get_connection()
    conn.cursor().execute("INSERT INTO t VALUES (?)", [7])
    conn.commit()
    pool.put_connection(conn)
    again = pool.get_connection()
    assert again is conn
    curs = again.cursor()
    curs.execute("SELECT x FROM t")
    assert curs.fetchall() == [(7,)]
    pool.put_connection(again)
    assert pool.created == 1
    pool.close()
    assert conn.closed


def test_a_timed_out_writer_request_does_not_keep_the_writer_lock(
    db_path: Path,
) -> None:
    # All connections are out: the writer request times out waiting for a
    # connection, and must give the writer role back.
    pool = FilePool(db_path, pool_size=1, max_overflow=0)
    reader = pool.get_connection(is_writer=None)
    with pytest.raises(ConnectionUnavailableError, match="return of connection"):
        pool.get_connection(is_writer=True, timeout=0.05)
    assert pool._num_writers == 0
    pool.put_connection(reader)
    writer = pool.get_connection(is_writer=True, timeout=0)
    assert writer.is_writer is True
    pool.put_connection(writer)


def test_the_unavailable_error_is_an_operational_error_and_a_timeout(
    db_path: Path,
) -> None:
    pool = FilePool(db_path, pool_size=1, max_overflow=0)
    pool.get_connection()
    with pytest.raises(OperationalError) as info:
        pool.get_connection(timeout=0)
    assert isinstance(info.value, TimeoutError)


def test_closing_the_pool_wakes_a_waiting_request(db_path: Path) -> None:
    pool = FilePool(db_path, pool_size=1, max_overflow=0)
    pool.get_connection()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            pool.get_connection(timeout=10)
        except BaseException as e:
            errors.append(e)

    waiter = threading.Thread(target=wait)
    waiter.start()
    while pool._get_semaphore._value != 0:  # type: ignore[attr-defined]
        threading.Event().wait(0.001)
    pool.close()
    waiter.join(timeout=5)
    assert not waiter.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], ConnectionPoolClosedError)


def test_pre_ping_replaces_a_connection_that_no_longer_works(db_path: Path) -> None:
    pool = FilePool(db_path, pool_size=1, max_overflow=0, pre_ping=True)
    conn = pool.get_connection()
    pool.put_connection(conn)
    conn.sqlite.close()  # broken behind the pool's back
    fresh = pool.get_connection()
    assert fresh is not conn
    assert conn.closed
    curs = fresh.cursor()
    curs.execute("SELECT 1")
    assert curs.fetchone() == (1,)


def test_an_expired_idle_connection_is_closed_and_replaced(db_path: Path) -> None:
    pool = FilePool(db_path, pool_size=1, max_overflow=0, max_age=0.05)
    conn = pool.get_connection()
    pool.put_connection(conn)
    deadline = threading.Event()
    for _ in range(100):
        if conn.closed:
            break
        deadline.wait(0.01)
    assert conn.closed
    assert conn.closing
    fresh = pool.get_connection()
    assert fresh is not conn
    assert not fresh.closed


def test_returning_a_foreign_connection_is_refused(db_path: Path) -> None:
    pool = FilePool(db_path)
    other = FilePool(db_path)
    conn = other.get_connection()
    with pytest.raises(ConnectionNotFromPoolError, match="not in use in this pool"):
        pool.put_connection(conn)
    other.put_connection(conn)


def test_negative_sizes_are_refused(db_path: Path) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        FilePool(db_path, pool_size=-1)
