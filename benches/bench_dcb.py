"""DCB recorders: esox (memory, SQLite, PostgreSQL) against eventsourcing 9.5
(memory, ``postgres_tt``), in one run.

Run: pytest benches/bench_dcb.py --benchmark-only, then benches/report.py.
Three workloads: a read by tag of the 1% of 100,000 events that have it (the
index, not a scan); course-booking decisions (read a two-item boundary of a
course and a student, decide, append on condition), 200 per round, with 50
courses and 500 students registered, by one client; and the same decisions
by 4 client processes at once (50 each; a refused one is read and decided
again). PostgreSQL (``ESOX_BENCH_POSTGRES_*`` or ``POSTGRES_*``) gets a fresh
schema per benchmark, and is skipped if unreachable.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.dcb import api as es_api
from eventsourcing.dcb.popo import InMemoryDCBRecorder as EsMemoryRecorder

from esox.bench.plan import POSTGRES_ENV, postgres_conninfo, postgres_unreachable
from esox.dcb import api as esox_api
from esox.dcb.memory import InMemoryDCBRecorder
from esox.dcb.sqlite import SqliteDCBRecorder

EVENTS = 100_000
DECISIONS = 200
COURSES, STUDENTS = 50, 500
READ = f"dcb read by tag (1% of {EVENTS:,} events)"
DECIDE = f"dcb read-decide-append ({DECISIONS} course bookings)"
CLIENTS = 4
DECIDE_4 = f"dcb read-decide-append ({DECISIONS} course bookings, {CLIENTS} processes)"
CONNECT = [
    POSTGRES_ENV[f"POSTGRES_{key}"]
    for key in ("DBNAME", "HOST", "PORT", "USER", "PASSWORD")
]


@pytest.fixture
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where the store is: an SQLite file, or a fresh PostgreSQL schema."""
    kind = request.node.callspec.params["kind"]
    if kind != "postgres":
        yield str(tmp_path / "dcb.db")
        return
    if postgres_unreachable():
        pytest.skip(postgres_unreachable())
    import psycopg

    schema = f"bench_dcb_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def open_store(side: str, kind: str, place: str, *, create: bool = True) -> Any:
    """A recorder of ``side`` ("esox" or "eventsourcing") on ``kind``."""
    if side == "esox" and kind == "memory":
        return InMemoryDCBRecorder()
    if side == "esox" and kind == "sqlite":
        return SqliteDCBRecorder(place, synchronous="NORMAL")
    if side == "esox":
        from esox.dcb.postgres import PostgresDCBRecorder
        from esox.postgres import PostgresDatastore

        recorder = PostgresDCBRecorder(PostgresDatastore(*CONNECT, schema=place))
    elif kind == "memory":
        return EsMemoryRecorder()
    else:
        from eventsourcing.dcb.postgres_tt import PostgresDCBRecorderTT
        from eventsourcing.postgres import PostgresDatastore as EsDatastore

        # Its CREATE TABLE names the events table without the schema.
        os.environ["PGOPTIONS"] = f"-c search_path={place}"
        recorder = PostgresDCBRecorderTT(EsDatastore(*CONNECT, schema=place))
    if create:
        recorder.create_table()
    return recorder


def esox_recorder(kind: str, place: str) -> Any:
    return open_store("esox", kind, place)


def fill(recorder: Any, api: Any) -> Any:
    recorder.append(
        [
            api.DCBEvent("Noted", b"x" * 50, ["hot" if i % 100 == 0 else f"t{i}"])
            for i in range(EVENTS)
        ]
    )
    return api.DCBQuery([api.DCBQueryItem(tags=["hot"])])


def read_block(recorder: Any, query: Any) -> Callable[[], object]:
    def block() -> object:
        events = list(recorder.read(query))
        assert len(events) == EVENTS // 100
        return events

    return block


@pytest.mark.benchmark(group=READ)
@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_read_by_tag_esox(benchmark: Any, kind: str, place: str) -> None:
    recorder = esox_recorder(kind, place)
    benchmark(read_block(recorder, fill(recorder, esox_api)))


@pytest.mark.benchmark(group=READ)
@pytest.mark.parametrize("kind", ["memory", "postgres"])
def test_read_by_tag_eventsourcing(benchmark: Any, kind: str, place: str) -> None:
    recorder = open_store("eventsourcing", kind, place)
    benchmark.pedantic(read_block(recorder, fill(recorder, es_api)), rounds=5)


def register(recorder: Any, api: Any) -> None:
    recorder.append(
        [api.DCBEvent("CourseRegistered", b"{}", [f"c{c}"]) for c in range(COURSES)]
        + [api.DCBEvent("StudentRegistered", b"{}", [f"s{s}"]) for s in range(STUDENTS)]
    )


def decide(recorder: Any, api: Any, i: int, integrity_error: type[Exception]) -> None:
    """One subscribe decision: read the two-tag boundary, decide, append on
    condition; read and decide again if another client got there first."""
    course, student = f"c{i % COURSES}", f"s{(i * 7) % STUDENTS}"
    boundary = api.DCBQuery(
        [
            api.DCBQueryItem(["CourseRegistered", "StudentJoined"], [course]),
            api.DCBQueryItem(["StudentRegistered", "StudentJoined"], [student]),
        ]
    )
    while True:
        response = recorder.read(boundary)
        list(response)
        try:
            recorder.append(
                [api.DCBEvent("StudentJoined", b"{}", [course, student])],
                api.DCBAppendCondition(boundary, after=response.head),
            )
        except integrity_error:
            continue
        return


def errors(api: Any) -> type[Exception]:
    if api is esox_api:
        from esox.persistence import IntegrityError
    else:
        from eventsourcing.persistence import IntegrityError  # type: ignore[assignment]
    return IntegrityError


def booking(recorder: Any, api: Any) -> Callable[[], object]:
    """A fresh store with courses and students, and a block of decisions."""
    register(recorder, api)
    rounds = iter(range(10**9))
    integrity_error = errors(api)

    def block() -> object:
        base = next(rounds) * DECISIONS
        for i in range(base, base + DECISIONS):
            decide(recorder, api, i, integrity_error)
        return None

    return block


@pytest.mark.benchmark(group=DECIDE)
@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_decide_esox(benchmark: Any, kind: str, place: str) -> None:
    benchmark.pedantic(
        booking(esox_recorder(kind, place), esox_api), rounds=5, warmup_rounds=1
    )


@pytest.mark.benchmark(group=DECIDE)
@pytest.mark.parametrize("kind", ["memory", "postgres"])
def test_decide_eventsourcing(benchmark: Any, kind: str, place: str) -> None:
    recorder = open_store("eventsourcing", kind, place)
    benchmark.pedantic(booking(recorder, es_api), rounds=5, warmup_rounds=1)


def client(side: str, kind: str, place: str, number: int, conn: Connection) -> None:
    """A client process: on each message (a round), its share of the decisions."""
    api = esox_api if side == "esox" else es_api
    recorder = open_store(side, kind, place, create=False)
    integrity_error = errors(api)
    share = DECISIONS // CLIENTS
    while (round_ := conn.recv()) is not None:
        base = round_ * DECISIONS + number * share
        for i in range(base, base + share):
            decide(recorder, api, i, integrity_error)
        conn.send(share)


def clients_block(benchmark: Any, side: str, kind: str, place: str) -> None:
    """Start 4 client processes once; each timed block is one round of
    decisions by all of them at once."""
    register(open_store(side, kind, place), esox_api if side == "esox" else es_api)
    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe() for _ in range(CLIENTS)]
    processes = [
        context.Process(target=client, args=(side, kind, place, n, pipes[n][1]))
        for n in range(CLIENTS)
    ]
    for process in processes:
        process.start()
    for _, theirs in pipes:
        theirs.close()  # a client that dies ends our recv() with EOFError
    rounds = iter(range(10**9))

    def block() -> None:
        round_ = next(rounds)
        for ours, _ in pipes:
            ours.send(round_)
        assert sum(ours.recv() for ours, _ in pipes) == DECISIONS

    try:
        benchmark.pedantic(block, rounds=5, warmup_rounds=1)
    finally:
        for ours, _ in pipes:
            with contextlib.suppress(OSError):
                ours.send(None)
        for process in processes:
            process.join(timeout=30)


@pytest.mark.benchmark(group=DECIDE_4)
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_decide_4_clients_esox(benchmark: Any, kind: str, place: str) -> None:
    clients_block(benchmark, "esox", kind, place)


@pytest.mark.benchmark(group=DECIDE_4)
@pytest.mark.parametrize("kind", ["postgres"])
def test_decide_4_clients_eventsourcing(benchmark: Any, kind: str, place: str) -> None:
    clients_block(benchmark, "eventsourcing", kind, place)
