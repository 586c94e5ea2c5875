"""Recorder workloads: insert (batches of 1 to 1,000), select one aggregate's
events, and select notifications, on memory, SQLite and PostgreSQL.

The practical limits do the same work with the plain drivers: for inserts,
``sqlite3.executemany`` of the same rows into the same table (one
transaction per batch, same ``synchronous`` mode) and psycopg's binary
``COPY`` (one transaction per batch); for selects, the same query's
``fetchall()``, without building stored-event objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from esox.bench.harness import Twin, Workload, closed_on_error
from esox.bench.plan import Plan
from esox.bench.workloads.storage import (
    SQLITE_INSERT,
    Fresh,
    Kind,
    Row,
    batches,
    copy_rows,
    es_events,
    es_recorder,
    esox_events,
    esox_recorder,
    iter_pages,
    kinds,
    new_database,
    postgres_connect,
    prefill,
    rows,
    sqlite_connect,
    sqlite_insert_rows,
    sqlite_params,
    truncate,
)

__all__ = ["BATCH_SIZES", "PAGE", "workloads"]

BATCH_SIZES = (1, 10, 100, 1_000)
PAGE = 1_000  # notifications per select_notifications call, as a follower pulls

MakeRecorder = Callable[[Kind, Plan, Fresh], tuple[Any, str]]
MakeEvents = Callable[[Sequence[Row]], list[Any]]

SQLITE_SELECT_EVENTS = (
    "SELECT originator_id, originator_version, topic, state FROM stored_events "
    "WHERE originator_id = ? ORDER BY originator_version"
)
SQLITE_SELECT_NOTIFICATIONS = (
    "SELECT rowid, originator_id, originator_version, topic, state "
    "FROM stored_events WHERE rowid >= ? ORDER BY rowid LIMIT ?"
)


def _limit_name(kind: Kind, insert: bool) -> str:
    if kind.store == "sqlite":
        return "sqlite3.executemany" if insert else "sqlite3 fetchall"
    if kind.store == "postgres":
        return "psycopg COPY" if insert else "psycopg fetchall"
    return ""


def workloads(plan: Plan) -> list[Workload]:
    """The recorder workloads of the plan."""
    found: list[Workload] = []
    for kind in kinds(plan):
        for size in BATCH_SIZES:
            for scale in plan.scales:
                if size > scale:
                    continue
                timed_events = min(scale, size * plan.transactions(kind.store))
                note = ""
                if timed_events < scale:
                    note = (
                        f"times the last {timed_events:,} events inserted into "
                        f"{scale:,} ({timed_events // size} transactions)"
                    )
                found.append(
                    Workload(
                        family="recorder insert",
                        variant=f"{kind.name}, batch {size}",
                        scale=scale,
                        units=timed_events,
                        build=partial(build_insert, plan, kind, size, scale),
                        repeats=plan.repeats_at(scale),
                        side_repeats=plan.side_repeats_at(scale),
                        persistence=kind.name,
                        limit_name=_limit_name(kind, insert=True),
                        note=note,
                    )
                )
    read_kinds = kinds(plan, sync_modes=("FULL",))
    for family, build in (
        ("recorder select", build_select_events),
        ("notification select", build_select_notifications),
    ):
        for kind in read_kinds:
            name = "SQLite" if kind.store == "sqlite" else kind.name
            for scale in plan.scales:
                found.append(
                    Workload(
                        family=family,
                        variant=name,
                        scale=scale,
                        units=scale,
                        build=partial(build, plan, kind, scale),
                        repeats=plan.repeats_at(scale),
                        side_repeats=plan.side_repeats_at(scale),
                        persistence=name,
                        limit_name=_limit_name(kind, insert=False),
                    )
                )
    return found


# Inserts.


def build_insert(plan: Plan, kind: Kind, size: int, scale: int) -> dict[str, Twin]:
    """Twins that insert the last rows of ``scale`` in batches of ``size``.

    Every repeat starts from a table holding just the rows before those
    timed: a new database in memory and SQLite, the same table emptied
    (TRUNCATE) and filled again in PostgreSQL, where making a schema costs
    more than the block.
    """
    timed_events = min(scale, size * plan.transactions(kind.store))
    every = rows(scale, per_aggregate=size)
    before, timed_rows = every[: scale - timed_events], every[scale - timed_events :]
    timed_batches = batches(timed_rows, size)
    twins = {
        "esox": _insert_twin(
            kind, plan, esox_recorder, esox_events, before, timed_batches
        )
    }
    if plan.eventsourcing:
        twins["eventsourcing"] = _insert_twin(
            kind, plan, es_recorder, es_events, before, timed_batches
        )
    if kind.store == "sqlite":
        twins["limit"] = _sqlite_insert_limit(kind, plan, before, timed_batches)
    elif kind.store == "postgres":
        twins["limit"] = _postgres_insert_limit(kind, plan, before, timed_batches)
    return twins


def _insert_twin(
    kind: Kind,
    plan: Plan,
    make_recorder: MakeRecorder,
    make_events: MakeEvents,
    before: Sequence[Row],
    timed_batches: Sequence[Sequence[Row]],
) -> Twin:
    fresh = Fresh()
    kept: list[tuple[Any, str]] = []  # PostgreSQL's recorder and schema

    def prepare() -> Callable[[], object]:
        if kept:
            recorder, database = kept[0]
            truncate(database)
        else:
            fresh.release()
            recorder, database = make_recorder(kind, plan, fresh)
            if kind.store == "postgres":
                kept.append((recorder, database))
        prefill(kind, recorder, database, before, make_events)
        events = [make_events(batch) for batch in timed_batches]
        insert = recorder.insert_events

        def block() -> None:
            for batch in events:
                insert(batch)

        return block

    return Twin(prepare, fresh.release)


def _sqlite_insert_limit(
    kind: Kind,
    plan: Plan,
    before: Sequence[Row],
    timed_batches: Sequence[Sequence[Row]],
) -> Twin:
    fresh = Fresh()

    def prepare() -> Callable[[], object]:
        fresh.release()
        database = new_database(kind, plan, fresh)
        sqlite_connect(database, kind.synchronous).close()  # creates the table
        # Filled as the other sides' tables are: by another connection.
        sqlite_insert_rows(database, before)
        conn = sqlite_connect(database, kind.synchronous)
        fresh.on_release(conn.close)
        params = [sqlite_params(batch) for batch in timed_batches]
        execute, executemany = conn.execute, conn.executemany

        def block() -> None:
            for batch in params:
                execute("BEGIN IMMEDIATE")
                executemany(SQLITE_INSERT, batch)
                execute("COMMIT")

        return block

    return Twin(prepare, fresh.release)


def _postgres_table(kind: Kind, plan: Plan, fresh: Fresh) -> str:
    """A schema with an events table laid out as esox's (and eventsourcing's)."""
    _, schema = esox_recorder(kind, plan, fresh)
    return schema


def _postgres_insert_limit(
    kind: Kind,
    plan: Plan,
    before: Sequence[Row],
    timed_batches: Sequence[Sequence[Row]],
) -> Twin:
    fresh = Fresh()
    kept: list[tuple[Any, str]] = []

    def prepare() -> Callable[[], object]:
        if kept:
            conn, schema = kept[0]
            truncate(schema)
        else:
            schema = _postgres_table(kind, plan, fresh)
            conn = postgres_connect()
            fresh.on_release(conn.close)
            kept.append((conn, schema))
        if before:
            with conn.transaction():
                copy_rows(conn, schema, before)

        def block() -> None:
            for batch in timed_batches:
                with conn.transaction():
                    copy_rows(conn, schema, batch)

        return block

    return Twin(prepare, fresh.release)


# Selects: the table is filled once; every repeat reads the same rows.


def _read_twin(
    kind: Kind,
    plan: Plan,
    make_recorder: MakeRecorder,
    make_events: MakeEvents,
    every: Sequence[Row],
    read: Callable[[Any], Callable[[], object]],
) -> Twin:
    fresh = Fresh()
    with fresh.released_on_error():
        recorder, database = make_recorder(kind, plan, fresh)
        prefill(kind, recorder, database, every, make_events)
    block = read(recorder)
    return Twin(lambda: block, fresh.release)


def _read_limit(
    kind: Kind,
    plan: Plan,
    every: Sequence[Row],
    sqlite_read: Callable[[Any], Callable[[], object]],
    postgres_read: Callable[[Any, str], Callable[[], object]],
) -> Twin:
    fresh = Fresh()
    with fresh.released_on_error():
        if kind.store == "sqlite":
            database = new_database(kind, plan, fresh)
            sqlite_connect(database, kind.synchronous).close()  # creates the table
            sqlite_insert_rows(database, every)
            conn = sqlite_connect(database, kind.synchronous)
            fresh.on_release(conn.close)
            block = sqlite_read(conn)
        else:
            schema = _postgres_table(kind, plan, fresh)
            pg = postgres_connect()
            fresh.on_release(pg.close)
            with pg.transaction():
                copy_rows(pg, schema, every)
            block = postgres_read(pg, schema)
    return Twin(lambda: block, fresh.release)


def _read_twins(
    plan: Plan,
    kind: Kind,
    every: Sequence[Row],
    read: Callable[[Any], Callable[[], object]],
    sqlite_read: Callable[[Any], Callable[[], object]],
    postgres_read: Callable[[Any, str], Callable[[], object]],
) -> dict[str, Twin]:
    twins: dict[str, Twin] = {}
    with closed_on_error(twins):
        twins["esox"] = _read_twin(kind, plan, esox_recorder, esox_events, every, read)
        if plan.eventsourcing:
            twins["eventsourcing"] = _read_twin(
                kind, plan, es_recorder, es_events, every, read
            )
        if kind.store in ("sqlite", "postgres"):
            twins["limit"] = _read_limit(kind, plan, every, sqlite_read, postgres_read)
    return twins


def build_select_events(plan: Plan, kind: Kind, scale: int) -> dict[str, Twin]:
    """Twins that select the ``scale`` events of one aggregate."""
    every = rows(scale, per_aggregate=scale)
    originator_id = every[0][0]

    def read(recorder: Any) -> Callable[[], object]:
        select = recorder.select_events
        return lambda: select(originator_id)

    def sqlite_read(conn: Any) -> Callable[[], object]:
        params = (originator_id.hex,)
        return lambda: conn.execute(SQLITE_SELECT_EVENTS, params).fetchall()

    def postgres_read(conn: Any, schema: str) -> Callable[[], object]:
        query = (
            "SELECT originator_id, originator_version, topic, state "
            f'FROM "{schema}".stored_events WHERE originator_id = %s '
            "ORDER BY originator_version"
        )
        params = (originator_id,)
        return lambda: conn.execute(query, params, prepare=True, binary=True).fetchall()

    return _read_twins(plan, kind, every, read, sqlite_read, postgres_read)


def build_select_notifications(plan: Plan, kind: Kind, scale: int) -> dict[str, Twin]:
    """Twins that read ``scale`` notifications, ``PAGE`` per call."""
    every = rows(scale, per_aggregate=100)
    page = min(PAGE, scale)
    starts = list(iter_pages(scale, page))

    def read(recorder: Any) -> Callable[[], object]:
        select = recorder.select_notifications

        def block() -> int:
            return sum(len(select(start, page)) for start in starts)

        return block

    def sqlite_read(conn: Any) -> Callable[[], object]:
        def block() -> int:
            return sum(
                len(conn.execute(SQLITE_SELECT_NOTIFICATIONS, (s, page)).fetchall())
                for s in starts
            )

        return block

    def postgres_read(conn: Any, schema: str) -> Callable[[], object]:
        query = (
            "SELECT notification_id, originator_id, originator_version, topic, state "
            f'FROM "{schema}".stored_events WHERE notification_id >= %s '
            "ORDER BY notification_id LIMIT %s"
        )

        def block() -> int:
            return sum(
                len(
                    conn.execute(query, (s, page), prepare=True, binary=True).fetchall()
                )
                for s in starts
            )

        return block

    return _read_twins(plan, kind, every, read, sqlite_read, postgres_read)
