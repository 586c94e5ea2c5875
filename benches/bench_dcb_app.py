"""The DCB application: course booking through DCBApplication, esox (memory,
SQLite) against eventsourcing 9.5 (memory), in one run.

Run: pytest benches/bench_dcb_app.py --benchmark-only, then benches/report.py.
The same model (tests/dcb/coursebooking.py: students and courses as enduring
objects, msgspec decisions, a join decided by a group of the two) runs on both
libraries: eventsourcing's twin is that module with its imports pointed at
eventsourcing. A round is 200 joins, each one read (both objects' decisions,
one query of two tags), decide, conditional append; 50 courses and 500
students are registered first (also through the application). esox also
runs it with dataclass decisions and its default JSONDCBMapper (Rust), as
``memory-json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tests.dcb.coursebooking as esox_model

DECISIONS = 200
COURSES, STUDENTS = 50, 500
JOIN = f"dcb application: course-booking joins ({DECISIONS} per round)"


def booking(app: Any) -> tuple[Callable[[], object], list[str], list[int]]:
    """Courses and students registered, a block of joins (never refused),
    the course ids, and the number of blocks run."""
    courses = [app.register_course(f"c{c}", places=1000) for c in range(COURSES)]
    students = [app.register_student(f"s{s}", max_courses=100) for s in range(STUDENTS)]
    done = [0]

    def block() -> object:
        base = done[0] * DECISIONS
        for i in range(base, base + DECISIONS):
            app.join_course(students[(i // COURSES) % STUDENTS], courses[i % COURSES])
        done[0] += 1
        return None

    return block, courses, done


def run(benchmark: Any, app: Any) -> None:
    block, courses, done = booking(app)
    benchmark.pedantic(block, rounds=5, warmup_rounds=1)
    # Every join was recorded: the first course has one student per block of
    # COURSES joins.
    assert len(app.students_of(courses[0])) == done[0] * DECISIONS // COURSES


@pytest.mark.benchmark(group=JOIN)
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_join_esox(benchmark: Any, kind: str, tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "esox.memory"}
    if kind == "sqlite":
        env = {
            "PERSISTENCE_MODULE": "esox.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "booking.db"),
            "SQLITE_SYNCHRONOUS": "NORMAL",
        }
    with esox_model.CourseBooking(env) as app:
        run(benchmark, app)


@pytest.mark.benchmark(group=JOIN)
@pytest.mark.parametrize("kind", ["memory-json"])
def test_join_esox_json(benchmark: Any, kind: str) -> None:
    """esox's default: dataclass decisions, JSON by its Rust mapper."""
    model = esox_model.with_json_decisions()
    with model.CourseBooking({"PERSISTENCE_MODULE": "esox.memory"}) as app:
        run(benchmark, app)


@pytest.mark.benchmark(group=JOIN)
@pytest.mark.parametrize("kind", ["memory"])
def test_join_eventsourcing(benchmark: Any, kind: str) -> None:
    model = esox_model.for_eventsourcing()
    with model.CourseBooking({"PERSISTENCE_MODULE": "eventsourcing.dcb.popo"}) as app:
        run(benchmark, app)
