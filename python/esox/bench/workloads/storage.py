"""Persistence for the workloads: fresh databases per repeat, the same rows for
every side, and the plain-driver connections of the practical limits."""

from __future__ import annotations

import itertools
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esox.bench.plan import POSTGRES_ENV, Plan, postgres_conninfo
from esox.persistence import InfrastructureFactory, StoredEvent

__all__ = [
    "TOPIC",
    "Fresh",
    "Kind",
    "Row",
    "attach_recorder",
    "copy_rows",
    "database_env",
    "es_recorder",
    "esox_recorder",
    "kinds",
    "rows",
    "sqlite_connect",
    "sqlite_insert_rows",
    "truncate",
]

Row = tuple[uuid.UUID, int, str, bytes]

TOPIC = "esox.bench.models:Dog.TrickAdded"
# A typical event's state, as the mapper writes it (about 90 bytes).
STATE = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":'
    b'"2024-05-01T12:00:00.000000+00:00"},"trick":"roll over"}'
)

SQLITE_COLUMNS = "originator_id, originator_version, topic, state"
SQLITE_TABLE = (
    "CREATE TABLE IF NOT EXISTS stored_events (originator_id TEXT, "
    "originator_version INTEGER, topic TEXT, state BLOB, "
    "PRIMARY KEY (originator_id, originator_version))"
)
SQLITE_INSERT = f"INSERT INTO stored_events ({SQLITE_COLUMNS}) VALUES (?, ?, ?, ?)"


@dataclass(frozen=True)
class Kind:
    """A kind of persistence: ``store`` with SQLite's ``synchronous`` mode."""

    name: str
    store: str
    synchronous: str = ""


def kinds(plan: Plan, *, sync_modes: Sequence[str] = ("FULL", "NORMAL")) -> list[Kind]:
    """The persistence kinds of the plan (SQLite once per synchronous mode)."""
    found: list[Kind] = []
    for store in plan.kinds:
        if store == "memory":
            found.append(Kind("memory", "memory"))
        elif store == "sqlite":
            found += [Kind(f"SQLite {mode}", "sqlite", mode) for mode in sync_modes]
        elif store == "postgres":
            found.append(Kind("PostgreSQL", "postgres"))
    return found


def rows(count: int, per_aggregate: int) -> list[Row]:
    """``count`` stored-event rows: aggregates of ``per_aggregate`` versions."""
    found: list[Row] = []
    originator_id = uuid.uuid4()
    for i in range(count):
        version = i % per_aggregate + 1
        if version == 1:
            originator_id = uuid.uuid4()
        found.append((originator_id, version, TOPIC, STATE))
    return found


def batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` in consecutive slices of ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


class Fresh:
    """Resources of one twin's current repeat; ``release`` frees them (the next
    repeat's ``prepare`` calls it first, and so does the twin's ``close``)."""

    def __init__(self) -> None:
        self._cleanups: list[Callable[[], None]] = []

    def on_release(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` at the next release (last registered runs first)."""
        self._cleanups.append(cleanup)

    def release(self) -> None:
        """Free the resources, ignoring errors of those already gone."""
        while self._cleanups:
            cleanup = self._cleanups.pop()
            with suppress(Exception):
                cleanup()

    @contextmanager
    def released_on_error(self) -> Iterator[None]:
        """Release if the block raises: a set-up that fails leaves nothing."""
        try:
            yield
        except BaseException:
            self.release()
            raise


_names = itertools.count(1)


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")


def _new_schema(fresh: Fresh) -> str:
    import psycopg

    schema = f"esox_bench_{os.getpid()}_{next(_names)}"
    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    fresh.on_release(drop)
    return schema


def new_database(kind: Kind, plan: Plan, fresh: Fresh) -> str:
    """A new, empty database of ``kind``: an SQLite path or a PostgreSQL schema."""
    if kind.store == "sqlite":
        path = plan.workdir / f"esox-bench-{os.getpid()}-{next(_names)}.sqlite"
        _remove_sqlite(path)
        fresh.on_release(lambda: _remove_sqlite(path))
        return str(path)
    if kind.store == "postgres":
        return _new_schema(fresh)
    return ""


def database_env(kind: Kind, library: str, database: str) -> dict[str, str]:
    """The environment that points ``library`` at ``database`` of ``kind``."""
    esox = library == "esox"
    if kind.store == "memory":
        return {"PERSISTENCE_MODULE": "esox.memory" if esox else "eventsourcing.popo"}
    if kind.store == "sqlite":
        if esox:
            module = "esox.sqlite"
        elif kind.synchronous == "NORMAL":
            module = "esox.bench.es_models:SQLiteNormalFactory"
        else:
            module = "eventsourcing.sqlite"
        env = {"PERSISTENCE_MODULE": module, "SQLITE_DBNAME": database}
        if esox:
            env["SQLITE_SYNCHRONOUS"] = kind.synchronous
        return env
    module = "esox.postgres" if esox else "eventsourcing.postgres"
    return {"PERSISTENCE_MODULE": module, "POSTGRES_SCHEMA": database} | POSTGRES_ENV


def attach_recorder(
    kind: Kind, library: str, database: str, fresh: Fresh, *, create_table: bool = True
) -> Any:
    """An application recorder of ``library`` on ``database`` of ``kind``,
    closed at ``fresh``'s release. ``create_table=False`` for a database
    whose tables exist: eventsourcing's PostgreSQL DDL, run by several
    processes at once, fails with "tuple concurrently updated"."""
    env = database_env(kind, library, database)
    if not create_table:
        env["CREATE_TABLE"] = "false"
    if library == "esox":
        factory: Any = InfrastructureFactory.construct(env)
        fresh.on_release(getattr(factory, "close", lambda: None))
    else:
        from eventsourcing.persistence import InfrastructureFactory as EsFactory
        from eventsourcing.utils import Environment

        factory = EsFactory.construct(Environment(env=env))
        fresh.on_release(factory.close)
    return factory.application_recorder()


def esox_recorder(kind: Kind, plan: Plan, fresh: Fresh) -> tuple[Any, str]:
    """A new esox application recorder of ``kind`` and its database."""
    database = new_database(kind, plan, fresh)
    return attach_recorder(kind, "esox", database, fresh), database


def es_recorder(kind: Kind, plan: Plan, fresh: Fresh) -> tuple[Any, str]:
    """A new eventsourcing application recorder of ``kind`` and its database."""
    database = new_database(kind, plan, fresh)
    return attach_recorder(kind, "eventsourcing", database, fresh), database


def esox_events(batch: Sequence[Row]) -> list[StoredEvent]:
    """esox's stored events of the rows."""
    return [StoredEvent(*row) for row in batch]


def es_events(batch: Sequence[Row]) -> list[Any]:
    """eventsourcing's stored events of the rows."""
    from eventsourcing.persistence import StoredEvent as EsStoredEvent

    return [
        EsStoredEvent(originator_id=i, originator_version=v, topic=t, state=s)
        for i, v, t, s in batch
    ]


def sqlite_connect(path: str, synchronous: str) -> sqlite3.Connection:
    """A plain sqlite3 connection as both libraries open one: WAL, autocommit."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous or 'FULL'}")
    conn.execute(SQLITE_TABLE)
    return conn


def sqlite_params(batch: Sequence[Row]) -> list[tuple[str, int, str, bytes]]:
    """The rows as the SQLite tables hold them (ids as 32 hex digits)."""
    return [(i.hex, v, t, s) for i, v, t, s in batch]


def sqlite_insert_rows(path: str, batch: Sequence[Row]) -> None:
    """Insert rows into an SQLite database (untimed prefill), one transaction,
    then checkpoint, so that no side inherits a long write-ahead log."""
    conn = sqlite_connect(path, "OFF")
    try:
        conn.execute("BEGIN")
        conn.executemany(SQLITE_INSERT, sqlite_params(batch))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def copy_rows(
    conn: Any, schema: str, batch: Sequence[Row], table: str = "stored_events"
) -> None:
    """COPY rows into ``schema.table`` in binary, on ``conn``."""
    statement = (
        f'COPY "{schema}"."{table}" ({SQLITE_COLUMNS}) FROM STDIN (FORMAT BINARY)'
    )
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(["uuid", "int8", "text", "bytea"])
        for row in batch:
            copy.write_row(row)


def postgres_connect() -> Any:
    """A plain psycopg connection (autocommit) to the benchmark database."""
    import psycopg

    return psycopg.connect(postgres_conninfo(), autocommit=True)


def postgres_insert_rows(
    schema: str, batch: Sequence[Row], table: str = "stored_events"
) -> None:
    """COPY rows into a schema's events table (untimed prefill)."""
    with postgres_connect() as conn, conn.transaction():
        copy_rows(conn, schema, batch, table)


def truncate(schema: str, table: str = "stored_events") -> None:
    """Empty a PostgreSQL events table and restart its notification ids."""
    with postgres_connect() as conn:
        conn.execute(f'TRUNCATE "{schema}"."{table}" RESTART IDENTITY')


def prefill(
    kind: Kind,
    recorder: Any,
    database: str,
    batch: Sequence[Row],
    make: Callable[[Sequence[Row]], list[Any]],
) -> None:
    """Put rows in a side's table before timing, by the fastest route there is
    (in memory: the side's own recorder, ``make`` building its stored events)."""
    if not batch:
        return
    if kind.store == "sqlite":
        sqlite_insert_rows(database, batch)
    elif kind.store == "postgres":
        postgres_insert_rows(database, batch)
    else:
        for chunk in batches(batch, 1000):
            recorder.insert_events(make(chunk))


def iter_pages(total: int, page: int) -> Iterator[int]:
    """Start positions (from 1) of pages of ``page`` up to ``total``."""
    return iter(range(1, total + 1, page))
