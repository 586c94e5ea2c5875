"""Projections into materialised views (memory and SQLite), and their runners."""

from __future__ import annotations

import threading
from abc import abstractmethod
from pathlib import Path
from typing import Any

import pytest

from esox._core import SqliteDatabase
from esox.application import ProcessingEvent
from esox.memory import MemoryTrackingRecorder
from esox.persistence import (
    IntegrityError,
    StoredEvent,
    Tracking,
    TrackingRecorder,
    WaitInterruptedError,
)
from esox.sqlite import SQLiteProcessRecorder, SQLiteTrackingRecorder
from esox.system import (
    EventSourcedProjection,
    EventSourcedProjectionRunner,
    Projection,
    ProjectionRunner,
    singledispatchmethod,
)
from esox.utils import get_topic
from tests.system_apps import Item, Items, Record


class CountersView(TrackingRecorder):
    """Counts of item labels and tags: the materialised view."""

    @abstractmethod
    def incr(self, name: str, tracking: Tracking) -> None:
        """Add one to ``name``'s count, recording ``tracking`` in the same step."""

    @abstractmethod
    def get(self, name: str) -> int:
        """The count of ``name``."""


class MemoryCountersView(MemoryTrackingRecorder, CountersView):
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def incr(self, name: str, tracking: Tracking) -> None:
        with self._lock:
            self.insert_tracking(tracking)  # IntegrityError if seen: nothing changes
            self._counts[name] = self._counts.get(name, 0) + 1

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts.get(name, 0)


class SQLiteCountersView(SQLiteTrackingRecorder, CountersView):
    """Counts in SQLite, written with the tracking row in one transaction.

    Each increment is a row of its own table, inserted through a process
    recorder on the same database (one SQLite library: Python's sqlite3
    module must not open a file that esox's Rust SQLite has open).
    """

    def __init__(self, database: SqliteDatabase, *, create_table: bool = True) -> None:
        self._counts = SQLiteProcessRecorder(
            database, "counter_increments", originator_id_type="text"
        )

    def incr(self, name: str, tracking: Tracking) -> None:
        version = self.get(name) + 1
        increment = StoredEvent(name, version, "incr", b"")
        self._counts.insert_events([increment], tracking=tracking)

    def get(self, name: str) -> int:
        last = self._counts.select_events(name, desc=True, limit=1)
        return last[0].originator_version if last else 0


class Counters(Projection[CountersView]):
    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, domain_event: Item.Created, tracking: Tracking) -> None:
        self.view.incr("created", tracking)

    @process_event.register
    def _(self, domain_event: Item.Tagged, tracking: Tracking) -> None:
        if domain_event.tag == "boom":
            msg = "can't count 'boom'"
            raise ValueError(msg)
        self.view.incr(domain_event.tag, tracking)


class TagCounters(Counters):
    topics = (get_topic(Item.Tagged),)


VIEWS = {"memory": MemoryCountersView, "sqlite": SQLiteCountersView}


def env_for(kind: str, tmp_path: Path) -> dict[str, str]:
    if kind == "memory":
        return {"PERSISTENCE_MODULE": "esox.memory"}
    return {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": str(tmp_path / "db")}


@pytest.mark.parametrize("kind", VIEWS)
def test_projection_runner_keeps_a_view_up_to_date(kind: str, tmp_path: Path):
    with ProjectionRunner(
        application_class=Items,
        projection_class=Counters,
        view_class=VIEWS[kind],
        env=env_for(kind, tmp_path),
    ) as runner:
        items = runner.app
        a = items.create("a")
        items.tag(a, "red")
        items.tag(a, "red")
        items.create("b")
        notification_id = items.recorder.max_notification_id()
        runner.wait(notification_id, timeout=5)
        assert runner.view.get("created") == 2
        assert runner.view.get("red") == 2
        assert runner.view.max_tracking_id("Items") == 4
        assert runner.is_started


def test_projection_view_refuses_an_event_twice():
    view = MemoryCountersView()
    view.incr("x", Tracking("Items", 1))
    with pytest.raises(IntegrityError):
        view.incr("x", Tracking("Items", 1))
    assert view.get("x") == 1


def test_projection_runner_resumes_from_the_views_position(tmp_path: Path):
    env = env_for("sqlite", tmp_path)
    with Items(env) as items:
        a = items.create("a")
        items.tag(a, "red")
    kwargs: dict[str, Any] = {
        "application_class": Items,
        "projection_class": Counters,
        "view_class": SQLiteCountersView,
        "env": env,
    }
    with ProjectionRunner(**kwargs) as runner:
        runner.wait(2, timeout=5)
        runner.app.tag(a, "red")
        runner.wait(3, timeout=5)
    with Items(env) as items:
        items.tag(a, "blue")
    with ProjectionRunner(**kwargs) as runner:
        runner.wait(4, timeout=5)
        assert (runner.view.get("created"), runner.view.get("red")) == (1, 2)
        assert runner.view.get("blue") == 1


def test_projection_runner_stops_and_starts_again():
    runner = ProjectionRunner(
        application_class=Items,
        projection_class=Counters,
        view_class=MemoryCountersView,
    )
    runner.app.create("a")
    runner.wait(1, timeout=5)
    runner.stop()
    runner.wait(2, timeout=5)  # stopped: returns at once
    runner._thread.join(5)  # type: ignore[union-attr]
    assert not runner.is_started
    runner.app.create("b")
    runner.start()
    runner.wait(2, timeout=5)
    assert runner.view.get("created") == 2
    runner.__exit__(None, None, None)


def test_projection_runner_filters_by_the_projections_topics():
    with ProjectionRunner(
        application_class=Items,
        projection_class=TagCounters,
        view_class=MemoryCountersView,
    ) as runner:
        a = runner.app.create("a")
        runner.app.create("b")
        runner.app.tag(a, "red")
        runner.wait(3, timeout=5)
        assert runner.view.get("created") == 0
        assert runner.view.get("red") == 1


def test_projection_runner_raises_processing_errors_from_wait_and_exit():
    runner = ProjectionRunner(
        application_class=Items,
        projection_class=Counters,
        view_class=MemoryCountersView,
    )
    a = runner.app.create("a")
    runner.app.tag(a, "boom")
    with pytest.raises(ValueError, match="can't count 'boom'") as info:
        runner.wait(2, timeout=5)
    assert any("notification 2" in note for note in info.value.__notes__)
    runner.app.create("c")
    with pytest.raises(WaitInterruptedError):
        runner.wait(3, timeout=5)  # reported once; the runner stays interrupted
    runner.stop()
    runner.__exit__(None, None, None)

    runner = ProjectionRunner(
        application_class=Items,
        projection_class=Counters,
        view_class=MemoryCountersView,
    )
    runner.app.tag(runner.app.create("a"), "boom")
    with pytest.raises(ValueError, match="can't count 'boom'"), runner:
        runner.is_interrupted.wait(5)


def test_projection_runner_run_forever_raises_the_error():
    runner = ProjectionRunner(
        application_class=Items,
        projection_class=Counters,
        view_class=MemoryCountersView,
    )
    runner.app.tag(runner.app.create("a"), "boom")
    with pytest.raises(ValueError, match="can't count"):
        runner.run_forever(timeout=5)
    runner.__exit__(None, None, None)


class Mirror(EventSourcedProjection[Any]):
    topics = (get_topic(Item.Created),)

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent[Any]) -> None:
        assert processing_event.tracking is not None
        processing_event.collect_events(
            Record(
                "Items",
                processing_event.tracking.notification_id,
                "",
                domain_event.label,
            )
        )


def test_event_sourced_projection_runner_records_events_with_tracking():
    with EventSourcedProjectionRunner(
        application_class=Items, projection_class=Mirror
    ) as runner:
        a = runner.app.create("a")
        runner.app.tag(a, "x")
        runner.app.create("b")
        runner.wait(3, timeout=5)
        mirror = runner.projection
        assert mirror.recorder.max_tracking_id("Items") == 3
        labels = [
            e.label
            for e in mirror.mapper.to_domain_events(
                mirror.recorder.select_notifications(1, 10)
            )
        ]
        assert labels == ["a", "b"]
