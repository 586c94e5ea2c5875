"""DCB recorders: esox (memory, SQLite, PostgreSQL) against eventsourcing 9.5
(memory, ``postgres_tt``), in one run.

Run: pytest benches/bench_dcb.py --benchmark-only, then benches/report.py.
Three workloads: a read by tag of the 1% of 100,000 events that have it (the
index, not a scan); course-booking decisions (read a two-item boundary of a
course and a student, decide, append on condition), 200 per round, with 50
courses and 500 students registered, by one client; and the same decisions
by 4 client processes at once (50 each; a refused one is read and decided
again). PostgreSQL (``ESOX_BENCH_POSTGRES_*`` or ``POSTGRES_*``) gets a fresh
schema per benchmark, and is skipped if unreachable. The stores, the events
and the decisions are ``esox bench``'s (``esox.bench.workloads.dcb``, family
"dcb", which has the one-client and read-by-tag workloads).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esox.bench.plan import postgres_conninfo, postgres_unreachable
from esox.bench.workloads.dcb import (
    CLIENTS,
    DECISIONS,
    Clients,
    api_of,
    booking,
    fill,
    open_store,
    read_block,
    register,
    tagged,
)

EVENTS = 100_000
READ = f"dcb read by tag (1% of {EVENTS:,} events)"
DECIDE = f"dcb read-decide-append ({DECISIONS} course bookings)"
DECIDE_4 = f"dcb read-decide-append ({DECISIONS} course bookings, {CLIENTS} processes)"


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


def read_by_tag(side: str, kind: str, place: str) -> Any:
    recorder = open_store(side, kind, place)
    return read_block(recorder, fill(recorder, api_of(side), EVENTS), tagged(EVENTS))


@pytest.mark.benchmark(group=READ)
@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_read_by_tag_esox(benchmark: Any, kind: str, place: str) -> None:
    benchmark(read_by_tag("esox", kind, place))


@pytest.mark.benchmark(group=READ)
@pytest.mark.parametrize("kind", ["memory", "postgres"])
def test_read_by_tag_eventsourcing(benchmark: Any, kind: str, place: str) -> None:
    benchmark.pedantic(read_by_tag("eventsourcing", kind, place), rounds=5)


def decisions(side: str, kind: str, place: str) -> Any:
    """Each call runs the next round of decisions on a fresh store."""
    next_block = booking(open_store(side, kind, place), side)
    return lambda: next_block()()


@pytest.mark.benchmark(group=DECIDE)
@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_decide_esox(benchmark: Any, kind: str, place: str) -> None:
    benchmark.pedantic(decisions("esox", kind, place), rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group=DECIDE)
@pytest.mark.parametrize("kind", ["memory", "postgres"])
def test_decide_eventsourcing(benchmark: Any, kind: str, place: str) -> None:
    benchmark.pedantic(
        decisions("eventsourcing", kind, place), rounds=5, warmup_rounds=1
    )


def clients_block(benchmark: Any, side: str, kind: str, place: str) -> None:
    """Start the client processes once; each timed block is one round of
    decisions by all of them at once."""
    register(open_store(side, kind, place), api_of(side))
    clients = Clients(side, kind, place)
    try:
        benchmark.pedantic(clients.run_round, rounds=5, warmup_rounds=1)
    finally:
        clients.close()


@pytest.mark.benchmark(group=DECIDE_4)
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_decide_4_clients_esox(benchmark: Any, kind: str, place: str) -> None:
    clients_block(benchmark, "esox", kind, place)


@pytest.mark.benchmark(group=DECIDE_4)
@pytest.mark.parametrize("kind", ["postgres"])
def test_decide_4_clients_eventsourcing(benchmark: Any, kind: str, place: str) -> None:
    clients_block(benchmark, "eventsourcing", kind, place)
