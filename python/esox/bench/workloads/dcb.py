"""DCB recorders: esox (memory, SQLite, PostgreSQL) against eventsourcing 9.5
(memory, ``postgres_tt``) (family "dcb").

Course-booking decisions: 50 courses and 500 students are registered first
(untimed); a timed block is ``DECISIONS`` subscribe decisions by one client,
each one reading a two-item boundary (the course's and the student's
events), deciding and appending a ``StudentJoined`` event tagged with both
on the condition that nothing in the boundary was appended since the read;
and the same decisions by ``CLIENTS`` processes at once (SQLite and
PostgreSQL; a refused one is read and decided again). Read by tag: a store
of N events of which 1% carry the tag "hot" (filled untimed); a timed block
reads those back, which an index finds without scanning the other 99%.
eventsourcing has no SQLite DCB store: its side runs on memory and
PostgreSQL only.

``benches/bench_dcb.py`` runs the same code under pytest-benchmark.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from esox.bench.harness import Twin, Workload, closed_on_error
from esox.bench.plan import POSTGRES_ENV, Plan
from esox.bench.workloads.storage import Fresh, Kind, kinds, new_database

__all__ = [
    "CLIENTS",
    "COURSES",
    "DECISIONS",
    "STUDENTS",
    "Clients",
    "api_of",
    "booking",
    "close_store",
    "decide",
    "fill",
    "open_store",
    "read_block",
    "register",
    "workloads",
]

FAMILY = "dcb"
DECISIONS = 200
CLIENTS = 4
COURSES, STUDENTS = 50, 500
# One event in this many carries the tag read back.
TAGGED_EVERY = 100


def api_of(side: str) -> Any:
    """The DCB api module of ``side`` ("esox" or "eventsourcing")."""
    if side == "esox":
        from esox.dcb import api

        return api
    from eventsourcing.dcb import api as es_api

    return es_api


def integrity_error_of(side: str) -> type[Exception]:
    """The exception ``side``'s recorders raise when a condition fails."""
    if side == "esox":
        from esox.persistence import IntegrityError

        return IntegrityError
    from eventsourcing.persistence import IntegrityError as EsIntegrityError

    return EsIntegrityError


def _connect_args() -> list[str]:
    return [
        POSTGRES_ENV[f"POSTGRES_{key}"]
        for key in ("DBNAME", "HOST", "PORT", "USER", "PASSWORD")
    ]


@contextmanager
def _search_path(schema: str) -> Iterator[None]:
    """eventsourcing's ``postgres_tt`` DDL names some objects without the
    schema: its connections opened meanwhile search ``schema`` first."""
    saved = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = f"-c search_path={schema}"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["PGOPTIONS"]
        else:
            os.environ["PGOPTIONS"] = saved


def open_store(
    side: str,
    store: str,
    place: str,
    *,
    synchronous: str = "NORMAL",
    create: bool = True,
) -> Any:
    """A DCB recorder of ``side`` on ``store`` ("memory", "sqlite" or
    "postgres"); ``place`` is the SQLite file or the PostgreSQL schema."""
    if side == "esox":
        if store == "memory":
            from esox.dcb.memory import InMemoryDCBRecorder

            return InMemoryDCBRecorder()
        if store == "sqlite":
            from esox.dcb.sqlite import SqliteDCBRecorder

            return SqliteDCBRecorder(place, synchronous=synchronous)
        from esox.dcb.postgres import PostgresDCBRecorder
        from esox.postgres import PostgresDatastore

        recorder: Any = PostgresDCBRecorder(
            PostgresDatastore(*_connect_args(), schema=place)
        )
        if create:
            recorder.create_table()
        return recorder
    if store == "memory":
        from eventsourcing.dcb.popo import InMemoryDCBRecorder as EsMemoryRecorder

        return EsMemoryRecorder()
    if store != "postgres":
        msg = f"eventsourcing has no DCB recorder on {store!r}"
        raise ValueError(msg)
    from eventsourcing.dcb.postgres_tt import PostgresDCBRecorderTT
    from eventsourcing.postgres import PostgresDatastore as EsDatastore

    with _search_path(place):
        recorder = PostgresDCBRecorderTT(EsDatastore(*_connect_args(), schema=place))
        if create:
            recorder.create_table()
    return recorder


def close_store(recorder: Any) -> None:
    """Release what a recorder holds (its connections or file)."""
    datastore = getattr(recorder, "datastore", None)
    closer = getattr(datastore, "close", None) or getattr(recorder, "close", None)
    if closer is not None:
        closer()


def fill(recorder: Any, api: Any, events: int) -> Any:
    """Append ``events`` events, one in ``TAGGED_EVERY`` tagged "hot"; the
    query of those."""
    recorder.append(
        [
            api.DCBEvent(
                "Noted", b"x" * 50, ["hot" if i % TAGGED_EVERY == 0 else f"t{i}"]
            )
            for i in range(events)
        ]
    )
    return api.DCBQuery([api.DCBQueryItem(tags=["hot"])])


def tagged(events: int) -> int:
    """How many of ``events`` filled events carry the tag."""
    return (events + TAGGED_EVERY - 1) // TAGGED_EVERY


def read_block(recorder: Any, query: Any, expected: int) -> Callable[[], object]:
    """A block that reads the query's events, which must be ``expected``."""

    def block() -> object:
        events = list(recorder.read(query))
        if len(events) != expected:
            msg = f"read {len(events)} tagged events, expected {expected}"
            raise AssertionError(msg)
        return events

    return block


def register(recorder: Any, api: Any) -> None:
    """The courses and students, one event each, tagged with their ids."""
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


def booking(recorder: Any, side: str) -> Callable[[], Callable[[], object]]:
    """Register courses and students in ``recorder``; a function that gives
    the next block of ``DECISIONS`` decisions (new ones each time)."""
    api, integrity_error = api_of(side), integrity_error_of(side)
    register(recorder, api)
    rounds = itertools.count()

    def next_block() -> Callable[[], object]:
        base = next(rounds) * DECISIONS

        def block() -> None:
            for i in range(base, base + DECISIONS):
                decide(recorder, api, i, integrity_error)

        return block

    return next_block


def client(
    side: str, store: str, place: str, synchronous: str, number: int, conn: Connection
) -> None:
    """A client process: on each message (a round), its share of the
    decisions; it answers how many it made, or the traceback of its error."""
    try:
        api, integrity_error = api_of(side), integrity_error_of(side)
        recorder = open_store(side, store, place, synchronous=synchronous, create=False)
        share = DECISIONS // CLIENTS
        while (round_ := conn.recv()) is not None:
            base = round_ * DECISIONS + number * share
            for i in range(base, base + share):
                decide(recorder, api, i, integrity_error)
            conn.send(share)
    except BaseException:
        conn.send(traceback.format_exc())
    else:
        close_store(recorder)


class Clients:
    """``CLIENTS`` client processes on one store whose tables exist; each
    ``run_round`` is a round of ``DECISIONS`` decisions by all at once."""

    def __init__(
        self, side: str, store: str, place: str, synchronous: str = "NORMAL"
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes = [context.Pipe() for _ in range(CLIENTS)]
        self.processes = [
            context.Process(
                target=client,
                args=(side, store, place, synchronous, n, self.pipes[n][1]),
                daemon=True,
            )
            for n in range(CLIENTS)
        ]
        for process in self.processes:
            process.start()
        for _, theirs in self.pipes:
            theirs.close()  # a client that dies ends our recv() with EOFError
        self.rounds = itertools.count()

    def run_round(self) -> None:
        """One round: every client makes its share of the decisions."""
        round_ = next(self.rounds)
        for ours, _ in self.pipes:
            with suppress(OSError):  # a client that failed: its reply says why
                ours.send(round_)
        replies = [ours.recv() for ours, _ in self.pipes]
        for reply in replies:
            if isinstance(reply, str):
                msg = f"a DCB client process failed:\n{reply}"
                raise RuntimeError(msg)
        if sum(replies) != DECISIONS:
            msg = f"{sum(replies)} decisions of {DECISIONS}"
            raise AssertionError(msg)

    def close(self) -> None:
        """Stop the clients (killed if they do not end within 30 s)."""
        for ours, _ in self.pipes:
            with suppress(OSError):
                ours.send(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        for ours, _ in self.pipes:
            ours.close()


def _sides(plan: Plan, kind: Kind) -> tuple[str, ...]:
    if plan.eventsourcing and kind.store != "sqlite":
        return ("esox", "eventsourcing")
    return ("esox",)


def _esox_only(plan: Plan, kind: Kind) -> str:
    return "" if _sides(plan, kind) != ("esox",) else "; esox only"


def _decisions(plan: Plan, kind: Kind, what: str, variant: str, note: str) -> Workload:
    return Workload(
        family=FAMILY,
        variant=f"course-booking decisions, {variant}, {kind.name}",
        scale=DECISIONS,
        units=DECISIONS,
        unit="op",
        build=partial(build, plan, kind, what, max(plan.scales)),
        repeats=plan.repeats,
        persistence=kind.name,
        note=note + _esox_only(plan, kind),
    )


def workloads(plan: Plan) -> list[Workload]:
    """Decisions by one client (and by ``CLIENTS`` processes off memory), and
    a read by tag of the plan's largest scale, on every persistence kind of
    the plan (SQLite NORMAL)."""
    found: list[Workload] = []
    events = max(plan.scales)
    for kind in kinds(plan, sync_modes=("NORMAL",)):
        found.append(
            _decisions(
                plan,
                kind,
                "decide",
                "1 client",
                "read a two-tag boundary, decide, conditional append; "
                f"{COURSES} courses, {STUDENTS} students",
            )
        )
        if kind.store != "memory":
            found.append(
                _decisions(
                    plan,
                    kind,
                    "clients",
                    f"{CLIENTS} client processes",
                    f"{DECISIONS // CLIENTS} decisions each; a refused one is "
                    "read and decided again",
                )
            )
        found.append(
            Workload(
                family=FAMILY,
                variant=f"read by tag, {kind.name}",
                scale=events,
                units=tagged(events),
                build=partial(build, plan, kind, "read", events),
                repeats=plan.repeats_at(events),
                persistence=kind.name,
                note=f"the 1% of {events:,} events with a tag{_esox_only(plan, kind)}",
            )
        )
    return found


def build(plan: Plan, kind: Kind, what: str, events: int) -> dict[str, Twin]:
    """A twin per side that has a DCB recorder on ``kind``."""
    twins: dict[str, Twin] = {}
    with closed_on_error(twins):
        for side in _sides(plan, kind):
            twins[side] = _twin(plan, kind, side, what, events)
    return twins


def _twin(plan: Plan, kind: Kind, side: str, what: str, events: int) -> Twin:
    fresh = Fresh()
    with fresh.released_on_error():
        place = new_database(kind, plan, fresh)
        recorder = open_store(side, kind.store, place, synchronous=kind.synchronous)
        fresh.on_release(partial(close_store, recorder))
        if what == "decide":
            prepare = booking(recorder, side)
        elif what == "clients":
            register(recorder, api_of(side))
            clients = Clients(side, kind.store, place, kind.synchronous)
            fresh.on_release(clients.close)
            run_round = clients.run_round
            prepare = lambda: run_round  # noqa: E731 (the twin's prepare)
        else:
            query = fill(recorder, api_of(side), events)
            prepare = partial(read_block, recorder, query, tagged(events))
    return Twin(prepare, fresh.release)
