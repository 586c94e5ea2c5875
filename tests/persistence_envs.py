"""Environments for running the same tests on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from psycopg.sql import Composable

    from esox.postgres import PostgresDatastore

POSTGRES = {
    "POSTGRES_DBNAME": os.environ.get("ESOX_TEST_POSTGRES_DBNAME", "test"),
    "POSTGRES_HOST": os.environ.get("ESOX_TEST_POSTGRES_HOST", "127.0.0.1"),
    "POSTGRES_PORT": os.environ.get("ESOX_TEST_POSTGRES_PORT", "5432"),
    "POSTGRES_USER": os.environ.get("ESOX_TEST_POSTGRES_USER", "postgres"),
    "POSTGRES_PASSWORD": os.environ.get("ESOX_TEST_POSTGRES_PASSWORD", ""),
}

# The same, as the keyword arguments of a PostgresDatastore.
POSTGRES_CONNECT: dict[str, Any] = {
    "dbname": POSTGRES["POSTGRES_DBNAME"],
    "host": POSTGRES["POSTGRES_HOST"],
    "port": int(POSTGRES["POSTGRES_PORT"]),
    "user": POSTGRES["POSTGRES_USER"],
    "password": POSTGRES["POSTGRES_PASSWORD"],
}


def postgres_datastore(schema: str, **options: Any) -> PostgresDatastore:
    """A datastore on the test database, in ``schema``; ``options`` are the
    datastore's own (``pool_size=2``), or override a connection setting."""
    from esox.postgres import PostgresDatastore

    return PostgresDatastore(**{**POSTGRES_CONNECT, "schema": schema, **options})


def postgres_conninfo() -> str:
    return (
        f"dbname={POSTGRES['POSTGRES_DBNAME']} host={POSTGRES['POSTGRES_HOST']} "
        f"port={POSTGRES['POSTGRES_PORT']} user={POSTGRES['POSTGRES_USER']} "
        f"password={POSTGRES['POSTGRES_PASSWORD']} connect_timeout=5"
    )


def require_postgres() -> None:
    """Skip when PostgreSQL is unreachable, except in CI, where that fails."""
    import psycopg

    try:
        psycopg.connect(postgres_conninfo()).close()
    except psycopg.OperationalError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is unreachable in CI: {e}")
        pytest.skip(f"PostgreSQL is unreachable: {e}")


def admin(query: str | Composable, params: Any = None) -> list[Any]:
    """Run one statement on a connection of its own (not esox's)."""
    import psycopg

    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        cursor = conn.execute(query, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema, dropped afterwards."""
    import psycopg

    require_postgres()
    schema = f"esox_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def persistence_env(kind: str, tmp_path: Path, name: str) -> Iterator[dict[str, str]]:
    """Env settings for ``kind`` ("memory", "sqlite", "postgres")."""
    if kind == "memory":
        yield {"PERSISTENCE_MODULE": "esox.memory"}
    elif kind == "sqlite":
        yield {
            "PERSISTENCE_MODULE": "esox.sqlite",
            "SQLITE_DBNAME": str(tmp_path / f"{name}.sqlite"),
        }
    elif kind == "postgres":
        with postgres_schema() as schema:
            yield {"PERSISTENCE_MODULE": "esox.postgres", "POSTGRES_SCHEMA": schema} | (
                POSTGRES
            )
    else:
        msg = f"unknown persistence kind {kind!r}"
        raise ValueError(msg)
