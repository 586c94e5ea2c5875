"""The PostgreSQL roles, databases and schemas eventsourcing's tests expect.

From eventsourcing's developer notes and its tests: role `eventsourcing`
(password `eventsourcing`) owning databases `eventsourcing` (schemas public
and myschema) and `eventsourcing_nopublic` (schema myschema, no public
schema); eventsourcing.tests.postgres_utils.pg_close_all_connections also
connects to `eventsourcing` as the OS user or as `postgres`. Created
idempotently, connecting as a superuser (`postgres`, then `root`) over TCP.
"""

from __future__ import annotations

from typing import Any

HOST = "127.0.0.1"
PORT = 5432
SUPERUSERS = ("postgres", "root")


def _connect(dbname: str) -> Any:
    import psycopg

    errors = []
    for user in SUPERUSERS:
        try:
            return psycopg.connect(
                host=HOST,
                port=PORT,
                user=user,
                dbname=dbname,
                autocommit=True,
                connect_timeout=5,
            )
        except psycopg.Error as exc:
            errors.append(f"{user}: {str(exc).strip()}")
    raise RuntimeError(
        f"cannot connect to PostgreSQL at {HOST}:{PORT} database {dbname!r} as a "
        f"superuser ({'; '.join(errors)}); start the server (see .ci/run) or run "
        "with --no-postgres-setup"
    )


def ensure_databases() -> list[str]:
    """Create what is missing; return what was created (empty when all exist)."""
    created: list[str] = []
    with _connect("postgres") as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = 'eventsourcing'"
        ).fetchone():
            conn.execute("CREATE ROLE eventsourcing LOGIN PASSWORD 'eventsourcing'")
            created.append("role eventsourcing")
        for db in ("eventsourcing", "eventsourcing_nopublic"):
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (db,)
            ).fetchone():
                conn.execute(f'CREATE DATABASE "{db}" OWNER eventsourcing')
                created.append(f"database {db}")
    for db, drop_public in (("eventsourcing", False), ("eventsourcing_nopublic", True)):
        with _connect(db) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = 'myschema'"
            ).fetchone()
            if not exists:
                conn.execute("CREATE SCHEMA myschema AUTHORIZATION eventsourcing")
                created.append(f"schema {db}.myschema")
            if (
                drop_public
                and conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = 'public'"
                ).fetchone()
            ):
                conn.execute("DROP SCHEMA public CASCADE")
                created.append(f"dropped schema {db}.public")
    return created
