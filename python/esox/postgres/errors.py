"""How psycopg's errors become esox's persistence errors.

Every psycopg error raised by a recorder passes through ``translate_error``,
the one place where it becomes one of esox's persistence errors; the
datastore asks ``is_connection_error`` and ``is_stale_statement`` whether a
failed statement may run again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg.errors
import psycopg_pool

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

__all__ = [
    "describe_error",
    "is_connection_error",
    "is_stale_statement",
    "translate_error",
    "translated",
]

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


def describe_error(error: psycopg.Error) -> str:
    """The server's message, with psycopg's class and the SQLSTATE."""
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
        return IntegrityError(f"{what}: {describe_error(error)}")
    if isinstance(error, psycopg.IntegrityError):
        return IntegrityError(f"{what}: {describe_error(error)}")
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
            f"written [{describe_error(error)}]"
        )
        return OperationalError(msg)
    if writing and is_connection_error(error):
        msg = (
            f"{what}: the connection was lost, so the transaction may or may not "
            f"have been committed; not retried [{describe_error(error)}]"
        )
        return OperationalError(msg)
    if isinstance(error, psycopg.errors.UndefinedTable):
        msg = f"{what}: {describe_error(error)} (create it, or set CREATE_TABLE=yes)"
        return ProgrammingError(msg)
    for psycopg_class, esox_class in _ERROR_CLASSES:
        if isinstance(error, psycopg_class):
            return esox_class(f"{what}: {describe_error(error)}")
    return PersistenceError(f"{what}: {describe_error(error)}")


_ERROR_CLASSES: tuple[tuple[type[psycopg.Error], type[PersistenceError]], ...] = (
    (psycopg.InterfaceError, InterfaceError),
    (psycopg.OperationalError, OperationalError),
    (psycopg.DataError, DataError),
    (psycopg.InternalError, InternalError),
    (psycopg.ProgrammingError, ProgrammingError),
    (psycopg.NotSupportedError, NotSupportedError),
    (psycopg.DatabaseError, DatabaseError),
)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """psycopg errors raised in the block as esox's persistence errors."""
    try:
        yield
    except psycopg.Error as e:
        raise translate_error(e, what) from e
