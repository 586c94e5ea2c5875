"""DCB recorders: esox (memory, SQLite) against eventsourcing 9.5 (memory).

Run: pytest benches/bench_dcb.py --benchmark-only, then benches/report.py.
Two workloads: a read by tag of the 1% of 100,000 events that have it (the
index, not a scan), and course-booking decisions (read a two-item boundary
of a course and a student, decide, append on condition), 200 per round,
with 50 courses and 500 students registered.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.dcb import api as es_api
from eventsourcing.dcb.popo import InMemoryDCBRecorder as EsMemoryRecorder

from esox.dcb import api as esox_api
from esox.dcb.memory import InMemoryDCBRecorder
from esox.dcb.sqlite import SqliteDCBRecorder

EVENTS = 100_000
DECISIONS = 200
COURSES, STUDENTS = 50, 500
READ = f"dcb read by tag (1% of {EVENTS:,} events)"
DECIDE = f"dcb read-decide-append ({DECISIONS} course bookings)"


def esox_recorder(kind: str, path: Path) -> Any:
    if kind == "memory":
        return InMemoryDCBRecorder()
    return SqliteDCBRecorder(str(path / "dcb.db"), synchronous="NORMAL")


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
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_read_by_tag_esox(benchmark: Any, kind: str, tmp_path: Path) -> None:
    recorder = esox_recorder(kind, tmp_path)
    benchmark(read_block(recorder, fill(recorder, esox_api)))


@pytest.mark.benchmark(group=READ)
@pytest.mark.parametrize("kind", ["memory"])
def test_read_by_tag_eventsourcing(benchmark: Any, kind: str) -> None:
    recorder = EsMemoryRecorder()
    benchmark.pedantic(read_block(recorder, fill(recorder, es_api)), rounds=5)


def booking(recorder: Any, api: Any) -> Callable[[], object]:
    """A fresh store with courses and students, and a block of decisions."""
    recorder.append(
        [api.DCBEvent("CourseRegistered", b"{}", [f"c{c}"]) for c in range(COURSES)]
        + [api.DCBEvent("StudentRegistered", b"{}", [f"s{s}"]) for s in range(STUDENTS)]
    )
    rounds = iter(range(10**9))

    def block() -> object:
        base = next(rounds) * DECISIONS
        for i in range(base, base + DECISIONS):
            course, student = f"c{i % COURSES}", f"s{(i * 7) % STUDENTS}"
            boundary = api.DCBQuery(
                [
                    api.DCBQueryItem(["CourseRegistered", "StudentJoined"], [course]),
                    api.DCBQueryItem(["StudentRegistered", "StudentJoined"], [student]),
                ]
            )
            response = recorder.read(boundary)
            list(response)
            recorder.append(
                [api.DCBEvent("StudentJoined", b"{}", [course, student])],
                api.DCBAppendCondition(boundary, after=response.head),
            )
        return None

    return block


@pytest.mark.benchmark(group=DECIDE)
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_decide_esox(benchmark: Any, kind: str, tmp_path: Path) -> None:
    benchmark.pedantic(
        booking(esox_recorder(kind, tmp_path), esox_api), rounds=5, warmup_rounds=1
    )


@pytest.mark.benchmark(group=DECIDE)
@pytest.mark.parametrize("kind", ["memory"])
def test_decide_eventsourcing(benchmark: Any, kind: str) -> None:
    benchmark.pedantic(booking(EsMemoryRecorder(), es_api), rounds=5, warmup_rounds=1)
