"""The tables of the PostgreSQL recorders, and their creation.

A recorder lists the tables it needs (``Table``); ``create_table`` creates
those that are missing, and checks or migrates those that exist, in one
transaction under an advisory lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

from psycopg import sql

from esox.persistence.errors import ProgrammingError
from esox.persistence.recorders import Recorder
from esox.postgres.datastore import Connection, PostgresDatastore
from esox.postgres.identifiers import MAX_IDENTIFIER_BYTES, index_name, quote
from esox.postgres.settled import TRANSACTION_ID

__all__ = ["PgStoredEvent", "PostgresRecorder", "Table", "events_table"]


class PgStoredEvent(NamedTuple):
    """eventsourcing's row shape of a stored event (its composite type's
    Python side); esox sends columns instead, but code written for
    eventsourcing may name it."""

    originator_id: UUID | str
    originator_version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class Table:
    """A table a recorder needs: created (and seeded) only if it is missing."""

    name: str
    create: tuple[str, ...]
    seed: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    # Checked against an existing table, to refuse a mismatched ORIGINATOR_ID_TYPE.
    originator_id_type: str | None = None
    # Columns added to an existing table that lacks them: (name, statements).
    added_columns: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Run with the connection when the table exists already (a migration).
    existing: Callable[[Connection], None] | None = None

    def create_in(self, conn: Connection) -> None:
        """Create the table (missing, or moved aside) and seed it."""
        for statement in self.create:
            conn.execute(statement)
        for statement, params in self.seed:
            conn.execute(statement, params)


_TABLE_INFO = (
    "SELECT (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a"
    " WHERE a.attrelid = c.oid AND a.attname = 'originator_id' AND NOT a.attisdropped)"
    " FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relname = %s"
)
_COLUMN_EXISTS = (
    "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute a"
    " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s"
    " AND NOT a.attisdropped)"
)
_SCHEMA_EXISTS = (
    "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = %s)"
)


class PostgresRecorder(Recorder):
    """Base class of the PostgreSQL recorders: a datastore and its tables."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self.schema = datastore.schema
        self._sql_create: list[Any] | None = None
        self._own_creates = 0

    @property
    def sql_create_statements(self) -> list[Any]:
        """The CREATE statements of the recorder's own tables (psycopg
        ``SQL``, as eventsourcing's recorders list theirs), then any that a
        subclass adds (eventsourcing's extension point: the tables of its
        view). ``create_table`` creates whichever of its own tables are
        missing (migrating older ones), then runs the added statements."""
        if self._sql_create is None:
            own = [sql.SQL(s) for t in self._tables() for s in t.create]
            self._sql_create, self._own_creates = own, len(own)
        return self._sql_create

    @sql_create_statements.setter
    def sql_create_statements(self, statements: list[Any]) -> None:
        # A list set whole is run whole, after the recorder's own creation.
        self._sql_create, self._own_creates = list(statements), 0

    @staticmethod
    def check_identifier_length(name: str) -> None:
        """ProgrammingError if ``name`` is longer than PostgreSQL's 63 bytes
        (PostgreSQL would cut it, and two names could become one)."""
        if len(name.encode()) > MAX_IDENTIFIER_BYTES:
            msg = f"Identifier too long: {name!r} is over PostgreSQL's 63 bytes"
            raise ProgrammingError(msg)

    def _tables(self) -> list[Table]:
        return []

    def create_table(self) -> None:
        """Create the schema and the recorder's tables, those that are missing.

        An advisory lock serialises concurrent creators: racing ``CREATE
        TABLE IF NOT EXISTS`` statements can fail in PostgreSQL.
        """
        schema = self.schema
        tables = self._tables()
        extra = self.sql_create_statements[self._own_creates :]

        def create(conn: Connection) -> None:
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"esox:{schema}",)
                )
                row = conn.execute(_SCHEMA_EXISTS, (schema,)).fetchone()
                if not (row and row[0]):
                    conn.execute(f"CREATE SCHEMA {quote(schema)}")
                for table in tables:
                    _create(conn, schema, table)
                for statement in extra:
                    conn.execute(statement)

        names = ", ".join(t.name for t in tables)
        # Creating what is missing can run again after a lost connection
        # (whether or not it committed); statements of a subclass's own may not.
        again = None if extra else _not_known
        self.datastore.write(
            f"create_table {names} in schema {schema!r}", create, again
        )


def _not_known(conn: Connection) -> None:
    """For ``datastore.write``: a write that may run again, whatever became
    of the lost one."""
    return None


def _create(conn: Connection, schema: str, table: Table) -> None:
    row = conn.execute(_TABLE_INFO, (schema, table.name)).fetchone()
    if row is None:
        table.create_in(conn)
        return
    if table.existing is not None:
        table.existing(conn)
    if table.originator_id_type and row[0] != table.originator_id_type:
        msg = (
            f"table {quote(schema, table.name)} has {row[0]} originator ids, but "
            f"ORIGINATOR_ID_TYPE is {table.originator_id_type!r}"
        )
        raise ProgrammingError(msg)
    for column, statements in table.added_columns:
        exists = conn.execute(_COLUMN_EXISTS, (schema, table.name, column)).fetchone()
        if not (exists and exists[0]):
            for statement in statements:
                conn.execute(statement)


def events_table(schema: str, name: str, id_type: str, *, numbered: bool) -> Table:
    """The events table: a numbered one has notification ids, and the id of
    the transaction that wrote each row (esox.postgres.settled)."""
    table = quote(schema, name)
    columns = (
        f"originator_id {id_type} NOT NULL, originator_version bigint NOT NULL, "
        "topic text, state bytea, "
    )
    create: tuple[str, ...] = (
        f"CREATE TABLE {table} ({columns}"
        "PRIMARY KEY (originator_id, originator_version))",
    )
    if not numbered:
        return Table(name, create, originator_id_type=id_type)
    index = index_name(name, "_notification_id_idx")
    create = (
        f"CREATE TABLE {table} ({columns}notification_id bigserial, "
        f"{TRANSACTION_ID} xid8 DEFAULT pg_current_xact_id(), "
        "PRIMARY KEY (originator_id, originator_version))",
        f"CREATE UNIQUE INDEX {quote(index)} ON {table} (notification_id ASC)",
    )
    # A table of eventsourcing, or of an earlier esox, gains the column
    # (empty in its existing rows: instant, no rewrite).
    added = (
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {TRANSACTION_ID} xid8",
        f"ALTER TABLE {table} ALTER COLUMN {TRANSACTION_ID} "
        "SET DEFAULT pg_current_xact_id()",
    )
    return Table(
        name,
        create,
        originator_id_type=id_type,
        added_columns=((TRANSACTION_ID, added),),
    )
