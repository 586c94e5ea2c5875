"""Client processes (spawned) racing course-booking decisions on one SQLite
file and on PostgreSQL: in each round every client reads its two-tag
boundary (a course's and a student's), all wait for each other, then each
appends on condition. Checked against the whole log afterwards: a winner's
boundary had no new matching event before its own, a loser's had one from
the same round (so exactly the non-conflicting ones won), every winner's
event is there once, positions are 1..N, and a subscriber received every
one of them, in order, while they were written."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esox.dcb.api import (
    DCBAppendCondition,
    DCBEvent,
    DCBQuery,
    DCBQueryItem,
    DCBRecorder,
)
from esox.dcb.postgres import PostgresDCBRecorder
from esox.dcb.sqlite import SqliteDCBRecorder
from esox.persistence import IntegrityError
from tests.persistence_envs import postgres_datastore, postgres_schema
from tests.writer_processes import results_of

CLIENTS, ROUNDS, COURSES, STUDENTS = 6, 12, 3, 8
JOINED = "StudentJoined"


def open_recorder(where: tuple[str, str]) -> DCBRecorder:
    kind, place = where
    if kind == "sqlite":
        return SqliteDCBRecorder(place, create_table=False, lock_timeout=30)
    return PostgresDCBRecorder(postgres_datastore(place, pool_size=1))


def boundary(course: int, student: int) -> DCBQuery:
    return DCBQuery(
        [
            DCBQueryItem(["CourseRegistered", JOINED], [f"course-{course}"]),
            DCBQueryItem(["StudentRegistered", JOINED], [f"student-{student}"]),
        ]
    )


def choice(client: int, round_: int) -> tuple[int, int]:
    """Overlapping boundaries: clients share courses and sometimes students."""
    return (client + round_) % COURSES, (client * 3 + round_) % STUDENTS


def book(
    where: tuple[str, str],
    client: int,
    barrier: Any,
    queue: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    """Each round: read the boundary, wait for all, append on condition."""
    attempts = []
    try:
        recorder = open_recorder(where)
        for round_ in range(ROUNDS):
            course, student = choice(client, round_)
            head = recorder.read(boundary(course, student)).head or 0
            barrier.wait(timeout=60)
            event = DCBEvent(
                JOINED,
                f"{client}:{round_}".encode(),
                [f"course-{course}", f"student-{student}"],
            )
            try:
                position: int | None = recorder.append(
                    [event], DCBAppendCondition(boundary(course, student), after=head)
                )
            except IntegrityError:
                position = None
            attempts.append((client, round_, head, position))
            barrier.wait(timeout=60)
        queue.put(attempts)
    except BaseException as error:
        barrier.abort()
        queue.put(repr(error))


def matches(query: DCBQuery, event: DCBEvent) -> bool:
    return any(
        (not item.types or event.type in item.types)
        and all(tag in event.tags for tag in item.tags)
        for item in query.items
    )


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        path = str(tmp_path / "courses.db")
        SqliteDCBRecorder(path).database.close()
        yield "sqlite", path
    else:
        with postgres_schema() as schema:
            recorder = open_recorder(("postgres", schema))
            assert isinstance(recorder, PostgresDCBRecorder)
            recorder.create_table()
            recorder.datastore.close()
            yield "postgres", schema


def test_racing_processes_exactly_the_non_conflicting_decisions_win_and_none_is_skipped(
    where: tuple[str, str],
):
    recorder = open_recorder(where)
    recorder.append(
        [DCBEvent("CourseRegistered", b"", [f"course-{c}"]) for c in range(COURSES)]
        + [
            DCBEvent("StudentRegistered", b"", [f"student-{s}"])
            for s in range(STUDENTS)
        ]
    )
    registered = COURSES + STUDENTS
    received: list[int] = []
    subscription = recorder.subscribe(DCBQuery([DCBQueryItem([JOINED], [])]))

    def follow() -> None:
        received.extend(sequenced.position for sequenced in subscription)

    follower = threading.Thread(target=follow)
    follower.start()
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(CLIENTS), context.Queue()
    clients = [
        context.Process(target=book, args=(where, c, barrier, queue))
        for c in range(CLIENTS)
    ]
    results = results_of(clients, queue, timeout=300)
    assert all(isinstance(r, list) for r in results), results
    attempts = [attempt for result in results for attempt in result]
    log = list(recorder.read())
    positions = [e.position for e in log]
    assert positions == list(range(1, len(log) + 1))  # gap-free
    events = {e.position: e.event for e in log}
    won = [a for a in attempts if a[3] is not None]
    assert len(log) == registered + len(won)  # nothing lost, nothing extra
    for client, round_, head, position in attempts:
        query = boundary(*choice(client, round_))
        if position is not None:
            assert events[position].data == f"{client}:{round_}".encode()
            # No event matching its boundary came between its read and it.
            assert not any(
                matches(query, events[p]) for p in range(head + 1, position)
            ), (client, round_)
        else:
            # Refused: an event of the same round matched its boundary.
            assert any(
                matches(query, e) and e.data.endswith(f":{round_}".encode())
                for p, e in events.items()
                if p > head
            ), (client, round_)
    # Some decisions won, some lost: the boundaries did overlap.
    assert ROUNDS <= len(won) < len(attempts)
    # The subscriber saw every joined event, in order, none skipped.
    deadline = threading.Event()
    for _ in range(100):
        if len(received) >= len(won):
            break
        deadline.wait(0.1)
    subscription.stop()
    follower.join(timeout=10)
    assert received == [p for p in positions if events[p].type == JOINED]
