"""The PostgreSQL DCB recorder (psycopg 3), in eventsourcing 9.5's ``postgres_tt``
layout.

Tables ``<name>_tt_main`` (id bigserial, type, data, tags text[]) and
``<name>_tt_tag`` (tag, main_id), the composite types and the two append
functions are those of ``eventsourcing.dcb.postgres_tt``, so a database
written by either library is read, and appended to, by the other. esox adds
one index, on ``(type, id)``, so that reads by type alone do not scan.

A read is one statement (its events and the head, from one snapshot). An
append is one round trip: a pipeline of ``LOCK TABLE ... IN EXCLUSIVE MODE``
(as eventsourcing's conditional append takes it) and one statement that
checks the condition, inserts the events and their tags, and NOTIFYs, then
COMMIT, sent in one write (libpq's pipeline mode, below psycopg's). Every
esox append holds the lock until it commits, so positions become visible
in order and a subscriber never skips one.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import weakref
from collections.abc import Generator, Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.waiting import Wait

from esox._core import dcb_append_arguments, dcb_read_arguments
from esox.dcb.api import (
    DCBAppendCondition,
    DCBEvent,
    DCBQuery,
    DCBRecorder,
    DCBSequencedEvent,
    DCBSubscription,
)
from esox.dcb.persistence import NativeDCBReads
from esox.persistence.errors import IntegrityError, ProgrammingError
from esox.postgres.datastore import Connection, PostgresDatastore
from esox.postgres.errors import is_stale_statement
from esox.postgres.identifiers import quote
from esox.postgres.tables import PostgresRecorder, Table

__all__ = ["PostgresDCBRecorder", "PostgresDCBSubscription"]

# A type or tag is a key of a btree index: PostgreSQL refuses index rows
# over 2704 bytes, after the sequence was advanced. Refusing longer ones
# first keeps positions free of gaps.
MAX_KEY_BYTES = 2048
# LIMIT for "no limit".
NO_LIMIT = 2**63 - 1

_Items = list[tuple[list[str], list[str]]]


def _check_text(value: str, what: str) -> None:
    """ProgrammingError if PostgreSQL cannot store or index ``value``."""
    if "\x00" in value:
        msg = f"{what} contains a NUL character, which PostgreSQL text cannot store"
        raise ProgrammingError(msg)
    if len(value) * 4 > MAX_KEY_BYTES and len(value.encode()) > MAX_KEY_BYTES:
        msg = (
            f"{what} is {len(value.encode())} bytes long; on PostgreSQL types and "
            f"tags are indexed and at most {MAX_KEY_BYTES} bytes"
        )
        raise ProgrammingError(msg)


def _text_array(values: list[str]) -> str:
    """A ``text[]`` literal of ``values``, sent as one text parameter: a few
    string operations, where psycopg dumps a list element by element in Python."""
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


def _check_items(items: _Items, what: str) -> None:
    for i, (types, tags) in enumerate(items):
        for j, type_ in enumerate(types):
            _check_text(type_, f"{what}.items[{i}].types[{j}]")
        for j, tag in enumerate(tags):
            _check_text(tag, f"{what}.items[{i}].tags[{j}]")


# The append statements each connection has prepared, by name (a hash of
# the statement, so recorders of one table share them).
_PREPARED: weakref.WeakKeyDictionary[Connection, set[bytes]] = (
    weakref.WeakKeyDictionary()
)
_PREPARED_LOCK = threading.Lock()


def _sync_results(pgconn: pq.abc.PGconn) -> Generator[Wait, Any, list[pq.abc.PGresult]]:
    """Send what libpq buffered, then the results up to the pipeline's sync."""
    while pgconn.flush():
        yield Wait.W
    results: list[pq.abc.PGresult] = []
    while True:
        while pgconn.is_busy():
            yield Wait.R
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:  # the end of one statement's results
            continue
        if result.status == pq.ExecStatus.PIPELINE_SYNC:
            return results
        results.append(result)


class PostgresDCBRecorder(NativeDCBReads, PostgresRecorder, DCBRecorder):
    """DCB events in PostgreSQL, in the tables of eventsourcing's ``postgres_tt``.

    ``events_table_name`` is eventsourcing's argument: the tables are
    ``<events_table_name>_tt_main`` and ``<events_table_name>_tt_tag``. A
    failed condition raises ``IntegrityError``; a condition ``after`` beyond
    the last recorded position raises ``ProgrammingError``; either way
    nothing is recorded. Types and tags must not contain NUL and are at most
    2048 bytes (they are indexed).
    """

    EVENT_TYPE = "dcb_event_tt"
    QUERY_ITEM_TYPE = "dcb_query_item_tt"
    UNCONDITIONAL_APPEND = "dcb_unconditional_append_tt"
    CONDITIONAL_APPEND = "dcb_conditional_append_tt"

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "dcb_events",
        event_class: type[Any] = DCBEvent,
        sequenced_event_class: type[Any] = DCBSequencedEvent,
    ) -> None:
        super().__init__(datastore)
        self.events_table_name = events_table_name + "_tt_main"
        self.tags_table_name = events_table_name + "_tt_tag"
        self.channel_name = self.events_table_name.replace(".", "_")
        self.index_name_id_cover_type = self.events_table_name + "_idx_id_type"
        self.index_name_type_id = self.events_table_name + "_idx_type_id"
        self.index_name_tag_main_id = self.tags_table_name + "_idx_tag_main_id"
        for name in (
            self.events_table_name,
            self.tags_table_name,
            self.index_name_id_cover_type,
            self.index_name_type_id,
            self.index_name_tag_main_id,
        ):
            self.check_identifier_length(name)
        self.event_class = event_class
        self.sequenced_event_class = sequenced_event_class
        schema = self.schema
        self._events = quote(schema, self.events_table_name, params=True)
        self._tags = quote(schema, self.tags_table_name, params=True)
        # Sent without parameters: the name's % signs are not doubled.
        events = quote(schema, self.events_table_name)
        self._sql_lock = f"LOCK TABLE {events} IN EXCLUSIVE MODE"
        self._sql_reads: dict[tuple[tuple[int, bool], ...], str] = {}
        self._sql_appends: dict[tuple[tuple[int, bool], ...] | None, str] = {}
        self._what_read = f"read DCB events from {events}"
        self._what_append = f"append DCB events to {events}"
        self.sql_create_statements.extend(
            [
                f"CREATE INDEX IF NOT EXISTS {quote(self.index_name_type_id)} "
                f"ON {events} (type, id)",
                *self._append_functions(),
            ]
        )

    # Tables.

    def _quoted_names(self) -> tuple[str, str, str, str]:
        """The events and tags tables and the two composite types, quoted."""
        schema = self.schema
        return (
            quote(schema, self.events_table_name),
            quote(schema, self.tags_table_name),
            quote(schema, self.EVENT_TYPE),
            quote(schema, self.QUERY_ITEM_TYPE),
        )

    def _tables(self) -> list[Table]:
        events, tags, event_type, item_type = self._quoted_names()
        # eventsourcing's storage parameters: ANALYZE often, VACUUM never
        # (rows are only ever inserted).
        storage = (
            "WITH (autovacuum_enabled = true, "
            "autovacuum_vacuum_threshold = 100000000, "
            "autovacuum_vacuum_scale_factor = 0.5, "
            "autovacuum_analyze_threshold = 1000, "
            "autovacuum_analyze_scale_factor = 0.01)"
        )
        create_types = (
            f"DO $$ BEGIN CREATE TYPE {event_type} AS "
            "(type text, data bytea, tags text[]); "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            f"DO $$ BEGIN CREATE TYPE {item_type} AS (types text[], tags text[]); "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        )
        main = Table(
            self.events_table_name,
            (
                *create_types,
                f"CREATE TABLE {events} (id bigserial, type text NOT NULL, "
                f"data bytea, tags text[] NOT NULL) {storage}",
                f"CREATE UNIQUE INDEX {quote(self.index_name_id_cover_type)} "
                f"ON {events} (id) INCLUDE (type)",
            ),
        )
        tag = Table(
            self.tags_table_name,
            (
                f"CREATE TABLE {tags} (tag text, main_id bigint "
                f"REFERENCES {events} (id)) {storage}",
                f"CREATE INDEX {quote(self.index_name_tag_main_id)} "
                f"ON {tags} (tag, main_id)",
            ),
        )
        return [*super()._tables(), main, tag]

    def _append_functions(self) -> tuple[str, str]:
        """eventsourcing's two append functions (so its recorder can append
        to tables esox created); esox's own appends do not call them."""
        events, tags, event_type, item_type = self._quoted_names()
        schema, channel = self.schema, quote(self.channel_name)
        insert = (
            "RETURN QUERY WITH inserted AS ("
            f"INSERT INTO {events} (type, data, tags) "
            "SELECT e.type, e.data, e.tags FROM unnest(new_events) AS e "
            "RETURNING id, tags), "
            f"tagged AS (INSERT INTO {tags} (tag, main_id) "
            "SELECT g.tag, i.id FROM inserted i, unnest(i.tags) AS g(tag)) "
            f"SELECT max(id) FROM inserted; NOTIFY {channel};"
        )
        unconditional = (
            f"CREATE OR REPLACE FUNCTION "
            f"{quote(schema, self.UNCONDITIONAL_APPEND)}"
            f"(new_events {event_type}[]) RETURNS SETOF bigint "
            f"LANGUAGE plpgsql AS $$ BEGIN {insert} END $$"
        )
        matching = (
            "SELECT EXISTS (SELECT 1 FROM ("
            "SELECT t.main_id, q.ordinality, q.tags AS required, q.types AS allowed "
            "FROM unnest(query_items) WITH ORDINALITY AS q "
            f"JOIN {tags} t ON t.tag = ANY(q.tags) "
            "WHERE t.main_id > COALESCE(after_id, 0) "
            "GROUP BY t.main_id, q.ordinality, q.tags, q.types "
            "HAVING COUNT(DISTINCT t.tag) = cardinality(q.tags)) AS g "
            f"JOIN {events} m ON m.id = g.main_id "
            "WHERE cardinality(g.allowed) = 0 OR g.allowed IS NULL "
            "OR m.type = ANY(g.allowed)) INTO conflict_exists;"
        )
        conditional = (
            f"CREATE OR REPLACE FUNCTION {quote(schema, self.CONDITIONAL_APPEND)}"
            f"(query_items {item_type}[], after_id bigint, new_events {event_type}[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $$ "
            "DECLARE conflict_exists boolean; BEGIN "
            f"LOCK TABLE {events} IN EXCLUSIVE MODE; {matching} "
            f"IF NOT conflict_exists THEN {insert} END IF; RETURN; END $$"
        )
        return unconditional, conditional

    # SQL for a query's shape: for each item, how many tags and whether it has types.

    def _matching_ids(self, shape: tuple[tuple[int, bool], ...]) -> str:
        """Ids of events after ``%b`` matching a query of this shape, by index:
        each item's first tag's rows, joined on its other tags (then the
        event's type checked), or the type index for an item without tags."""
        selects = []
        for n_tags, has_types in shape:
            if n_tags == 0:
                selects.append(
                    f"SELECT id FROM {self._events} WHERE type = ANY(%b::text::text[]) "
                    "AND id > %b"
                )
                continue
            joins = "".join(
                f" JOIN {self._tags} t{k} ON t{k}.main_id = t0.main_id "
                f"AND t{k}.tag = %b::text"
                for k in range(1, n_tags)
            )
            # Tags are what make a boundary selective: the type is checked
            # on each tagged event found, never by scanning a type's events.
            of_type = (
                f" AND (SELECT m.type FROM {self._events} m WHERE m.id = t0.main_id)"
                " = ANY(%b::text::text[])"
                if has_types
                else ""
            )
            selects.append(
                f"SELECT t0.main_id AS id FROM {self._tags} t0{joins} "
                f"WHERE t0.tag = %b::text AND t0.main_id > %b{of_type}"
            )
        return " UNION ALL ".join(selects)

    def _read_sql(self, shape: tuple[tuple[int, bool], ...]) -> str:
        sql = self._sql_reads.get(shape)
        if sql is None:
            if shape:
                # The ids first, then their rows by the id index (= ANY of
                # an array: the planner cannot mistake it for a big join).
                found = (
                    f"{self._events} m ON m.id = ANY(ARRAY("
                    f"SELECT DISTINCT id FROM ({self._matching_ids(shape)}) AS u "
                    "ORDER BY id LIMIT %b))"
                )
            else:
                found = (
                    f"LATERAL (SELECT id, type, data, tags FROM {self._events} "
                    "WHERE id > %b ORDER BY id LIMIT %b) AS m ON true"
                )
            sql = self._sql_reads[shape] = (
                "SELECT h.head, m.id, m.type, m.data, m.tags "
                f"FROM (SELECT max(id) AS head FROM {self._events}) AS h "
                f"LEFT JOIN {found} ORDER BY m.id"
            )
        return sql

    def _append_sql(self, shape: tuple[tuple[int, bool], ...] | None) -> str:
        sql = self._sql_appends.get(shape)
        if sql is None:
            if shape is None:
                check = "SELECT NULL::bigint AS id, true AS ok"
            elif not shape:  # matches every event
                check = (
                    f"SELECT (SELECT id FROM {self._events} WHERE id > %b "
                    "ORDER BY id LIMIT 1) AS id, %b <= (SELECT head FROM h) AS ok"
                )
            else:
                check = (
                    f"SELECT (SELECT id FROM ({self._matching_ids(shape)}) AS u "
                    "LIMIT 1) AS id, %b <= (SELECT head FROM h) AS ok"
                )
            sql = self._sql_appends[shape] = (
                f"WITH h AS (SELECT COALESCE(max(id), 0) AS head FROM {self._events}), "
                f"c AS ({check}), "
                "n AS (SELECT e.type, e.data, e.ord, "
                "ARRAY(SELECT jsonb_array_elements_text(j.tags)) AS tags "
                "FROM unnest(%b::text::text[], %b::bytea[]) "
                "WITH ORDINALITY AS e(type, data, ord) "
                "JOIN jsonb_array_elements(%b::text::jsonb) WITH ORDINALITY "
                "AS j(tags, ord) ON j.ord = e.ord), "
                f"i AS (INSERT INTO {self._events} (type, data, tags) "
                "SELECT type, data, tags FROM n "
                "WHERE (SELECT c.id IS NULL AND c.ok FROM c) ORDER BY ord "
                "RETURNING id, tags), "
                f"g AS (INSERT INTO {self._tags} (tag, main_id) "
                "SELECT DISTINCT x.tag, i.id FROM i, unnest(i.tags) AS x(tag)) "
                "SELECT (SELECT head FROM h), (SELECT id FROM c), "
                "(SELECT max(id) FROM i), "
                "(SELECT pg_notify(%b, '') FROM i LIMIT 1) IS NULL"
            )
        return sql

    @staticmethod
    def _shape_and_params(
        items: _Items, after: int, params: list[Any]
    ) -> tuple[tuple[int, bool], ...]:
        """The shape of a query (none if it matches every event), and its
        parameters appended to ``params`` in the order of ``_matching_ids``."""
        shape = []
        start = len(params)
        for types, tags in items:
            unique_tags = list(dict.fromkeys(tags))
            if not unique_tags and not types:
                del params[start:]
                return ()  # an empty item matches every event
            if not unique_tags:
                params.extend((_text_array(types), after))
            else:
                params.extend(unique_tags[1:])
                params.extend((unique_tags[0], after))
                if types:
                    params.append(_text_array(types))
            shape.append((len(unique_tags), bool(types)))
        return tuple(shape)

    # The recorder.

    def read_events(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> tuple[list[DCBSequencedEvent], int | None]:
        """The events after ``after`` matching ``query`` (at most ``limit``)
        and the head: the last position, or with a limit the last position read."""
        items, after_, limit_ = dcb_read_arguments(query, after=after, limit=limit)
        _check_items(items, "query")
        if limit_ == 0:
            return [], None
        after_ = after_ or 0
        params: list[Any] = []
        shape = self._shape_and_params(items, after_, params)
        if not shape:
            params.append(after_)
        params.append(NO_LIMIT if limit_ is None else limit_)
        sql = self._read_sql(shape)

        def select(conn: Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql, params, prepare=True, binary=True).fetchall()

        rows = self.datastore.read(self._what_read, select)
        event, sequenced = self.event_class, self.sequenced_event_class
        events = [
            sequenced(event(type_, data, tags), id_)
            for _, id_, type_, data, tags in rows
            if id_ is not None
        ]
        if limit_ is None:
            return events, rows[0][0]
        return events, events[-1].position if events else None

    def append(
        self, events: Sequence[DCBEvent], condition: DCBAppendCondition | None = None
    ) -> int:
        """Records ``events`` unless ``condition`` fails; the last position.

        The check and the insert are one statement, under the table lock
        that every esox append (and eventsourcing's conditional one) takes.
        """
        types, datas, tags, checked = dcb_append_arguments(events, condition)
        for i, type_ in enumerate(types):
            _check_text(type_, f"events[{i}].type")
        for i, event_tags in enumerate(tags):
            for j, tag in enumerate(event_tags):
                _check_text(tag, f"events[{i}].tags[{j}]")
        params: list[Any] = []
        after = 0
        shape: tuple[tuple[int, bool], ...] | None = None
        if checked is not None:
            items, after = checked
            _check_items(items, "condition.fail_if_events_match")
            shape = self._shape_and_params(items, after, params)
            params.append(after)
            if not shape:
                params.append(after)
        params.extend((_text_array(types), datas, json.dumps(tags), self.channel_name))
        sql = self._append_sql(shape)

        def write(conn: Connection) -> tuple[Any, ...]:
            return self._append_in_one_write(conn, sql, params)

        head, conflict, last, _ = self.datastore.write(self._what_append, write)
        if last is not None:
            return int(last)
        if conflict is not None:
            msg = (
                f"append condition failed: the event at position {conflict} matches "
                f"fail_if_events_match and was recorded after position {after}; "
                "read again and decide again"
            )
            raise IntegrityError(msg)
        msg = (
            f"condition.after is {after}, beyond the last recorded position {head}: "
            "use the head of a read from this recorder"
        )
        raise ProgrammingError(msg)

    def _append_in_one_write(
        self, conn: Connection, sql: str, params: list[Any]
    ) -> tuple[Any, ...]:
        """BEGIN, the table lock, the append statement (prepared, binary)
        and COMMIT, sent in one write through libpq's pipeline mode, which
        buffers them until the sync. (psycopg's pipeline sends each statement
        as it comes: a write, a TLS record and a wake-up of the server each.)"""
        pgconn = conn.pgconn
        with _PREPARED_LOCK:
            prepared = _PREPARED.setdefault(conn, set())
        name = (
            b"esox_dcb_"
            + hashlib.blake2b(sql.encode(), digest_size=12).hexdigest().encode()
        )
        transformer = Transformer(conn)
        values = transformer.dump_sequence(params, [PyFormat.BINARY] * len(params))
        pgconn.enter_pipeline_mode()
        try:
            pgconn.send_query_params(b"BEGIN", None)
            pgconn.send_query_params(self._sql_lock.encode(), None)
            prepare = name not in prepared
            if prepare:
                numbers = iter(range(1, len(params) + 1))
                query = re.sub(
                    "%[%b]",
                    lambda m: "%" if m[0] == "%%" else f"${next(numbers)}",
                    sql,
                )
                pgconn.send_prepare(name, query.encode(), transformer.types)
            pgconn.send_query_prepared(
                name,
                values,
                param_formats=[pq.Format.BINARY] * len(values),
                result_format=pq.Format.BINARY,
            )
            pgconn.send_query_params(b"COMMIT", None)
            pgconn.pipeline_sync()
            results = conn.wait(_sync_results(pgconn))
            pgconn.exit_pipeline_mode()
        except BaseException:
            conn.close()  # its state is unknown: the pool replaces it
            raise
        if prepare and results[2].status == pq.ExecStatus.COMMAND_OK:
            prepared.add(name)
        for result in results:
            if result.status == pq.ExecStatus.FATAL_ERROR:
                error = psycopg.errors.error_from_result(result, conn.info.encoding)
                if is_stale_statement(error):
                    # Deallocated (the datastore does so after stale ones).
                    prepared.clear()
                raise error
        rows = [r for r in results if r.status == pq.ExecStatus.TUPLES_OK]
        transformer.set_pgresult(rows[-1])
        return transformer.load_row(0, tuple)

    def subscribe(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
    ) -> PostgresDCBSubscription:
        """The matching events after ``after``, then new ones as they are
        committed (woken by NOTIFY, polling at least every second)."""
        return PostgresDCBSubscription(self, query=query, after=after)

    def explain_read(self, query: DCBQuery | None = None) -> list[str]:
        """PostgreSQL's plan for reading ``query`` (EXPLAIN ANALYZE), one line each."""
        items, _, _ = dcb_read_arguments(query)
        _check_items(items, "query")
        params: list[Any] = []
        shape = self._shape_and_params(items, 0, params)
        if not shape:
            params.append(0)
        params.append(NO_LIMIT)
        sql = "EXPLAIN (ANALYZE, COSTS OFF) " + self._read_sql(shape)

        def explain(conn: Connection) -> list[str]:
            return [row[0] for row in conn.execute(sql, params).fetchall()]

        return self.datastore.read(f"explain {self._what_read}", explain)


class PostgresDCBSubscription(DCBSubscription[PostgresDCBRecorder]):
    """Matching events of a PostgreSQL DCB recorder, woken by NOTIFY.

    A lost NOTIFY (or a lost LISTEN connection) costs at most a second: the
    datastore's listener caps every wait, and then the subscription reads again.
    """

    BATCH_SIZE = 500

    def __init__(
        self,
        recorder: PostgresDCBRecorder,
        query: DCBQuery | None = None,
        after: int | None = None,
    ) -> None:
        # Check the arguments now, as the Rust recorders' subscriptions do.
        items, _, _ = dcb_read_arguments(query, after=after)
        _check_items(items, "query")
        super().__init__(recorder, query=query, after=after)
        self._listener = recorder.datastore.listener
        self._stopped = threading.Event()
        self._buffer: list[DCBSequencedEvent] = []

    def stop(self) -> None:
        """Stops the subscription, waking a ``__next__`` that is waiting."""
        super().stop()
        self._stopped.set()
        self._listener.poke()

    def __next__(self) -> DCBSequencedEvent:
        recorder, channel = self._recorder, self._recorder.channel_name
        while not self._buffer:
            if self._stopped.is_set():
                raise StopIteration
            generation = self._listener.generation(channel)
            batch, _ = recorder.read_events(
                self._query, after=self._last_position, limit=self.BATCH_SIZE
            )
            if batch:
                self._buffer = batch[::-1]
            else:
                self._listener.wait(channel, generation, 1.0, self._stopped)
        if self._stopped.is_set():
            raise StopIteration
        event = self._buffer.pop()
        self._last_position = event.position
        return event
