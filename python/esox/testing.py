"""Reusable test cases for recorders: every esox recorder passes the same suite.

Subclass a case class in a pytest module and implement ``create_factory``
(or the ``create_*_recorder`` methods) to check a recorder of your own::

    class TestMyApplicationRecorder(ApplicationRecorderCases):
        def create_factory(self) -> InfrastructureFactory:
            return InfrastructureFactory.construct(Environment("app", {...}))

pytest is needed to run them (it is not a dependency of esox itself).
"""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID, uuid4

from esox.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    ProcessRecorder,
    StoredEvent,
    Tracking,
    TrackingRecorder,
)

__all__ = [
    "AggregateRecorderCases",
    "ApplicationRecorderCases",
    "ProcessRecorderCases",
    "TrackingRecorderCases",
]

TOPIC = "esox.testing:Happened"


def stored(originator_id: UUID | str, version: int, topic: str = TOPIC) -> StoredEvent:
    """A stored event whose state says who and which version it is."""
    return StoredEvent(
        originator_id, version, topic, f"{originator_id}:{version}".encode()
    )


class RecorderCases:
    """The factory (and so the database) under test, made afresh per test."""

    def create_factory(self) -> InfrastructureFactory[Any]:
        raise NotImplementedError

    def setup_method(self) -> None:
        self._factories: list[InfrastructureFactory[Any]] = []

    def teardown_method(self) -> None:
        for factory in self._factories:
            factory.close()

    def factory(self) -> InfrastructureFactory[Any]:
        factory = self.create_factory()
        self._factories.append(factory)
        return factory


class AggregateRecorderCases(RecorderCases):
    """What every aggregate recorder does."""

    def create_recorder(self) -> AggregateRecorder:
        return self.factory().aggregate_recorder()

    def test_inserted_events_are_selected_by_originator_in_version_order(self) -> None:
        recorder = self.create_recorder()
        a, b = uuid4(), uuid4()
        recorder.insert_events([stored(a, 1), stored(b, 1), stored(a, 2)])
        recorder.insert_events([stored(a, 3)])
        assert list(recorder.select_events(a)) == [
            stored(a, 1),
            stored(a, 2),
            stored(a, 3),
        ]
        assert list(recorder.select_events(b)) == [stored(b, 1)]
        assert list(recorder.select_events(uuid4())) == []

    def test_select_events_with_gt_lte_desc_and_limit(self) -> None:
        recorder = self.create_recorder()
        a = uuid4()
        recorder.insert_events([stored(a, v) for v in range(1, 11)])

        def versions(**kwargs: Any) -> list[int]:
            return [s.originator_version for s in recorder.select_events(a, **kwargs)]

        assert versions(gt=7) == [8, 9, 10]
        assert versions(lte=3) == [1, 2, 3]
        assert versions(gt=2, lte=5) == [3, 4, 5]
        assert versions(desc=True, limit=2) == [10, 9]
        assert versions(desc=True, lte=5, limit=1) == [5]
        assert versions(gt=3, limit=2) == [4, 5]
        assert versions(desc=True, gt=8) == [10, 9]

    def test_conflicting_version_is_refused_and_nothing_of_the_batch_is_stored(
        self,
    ) -> None:
        import pytest

        recorder = self.create_recorder()
        a, b = uuid4(), uuid4()
        recorder.insert_events([stored(a, 1)])
        with pytest.raises(IntegrityError):
            recorder.insert_events([stored(b, 1), stored(a, 1)])
        assert list(recorder.select_events(b)) == []
        with pytest.raises(IntegrityError):
            recorder.insert_events([stored(b, 1), stored(b, 1)])
        assert list(recorder.select_events(b)) == []
        assert list(recorder.select_events(a)) == [stored(a, 1)]

    def test_state_bytes_round_trip_exactly(self) -> None:
        recorder = self.create_recorder()
        a = uuid4()
        states = [b"", bytes(range(256)), b"\x00" * 10_000]
        events = [StoredEvent(a, i + 1, TOPIC, s) for i, s in enumerate(states)]
        recorder.insert_events(events)
        assert [s.state for s in recorder.select_events(a)] == states


class ApplicationRecorderCases(AggregateRecorderCases):
    """What every application recorder does, besides an aggregate recorder's."""

    def create_recorder(self) -> ApplicationRecorder:
        return self.factory().application_recorder()

    def test_notification_ids_are_returned_contiguous_in_batch_order(self) -> None:
        recorder = self.create_recorder()
        assert recorder.max_notification_id() is None
        a = uuid4()
        assert list(recorder.insert_events([stored(a, 1), stored(a, 2)]) or []) == [
            1,
            2,
        ]
        assert list(recorder.insert_events([stored(a, 3)]) or []) == [3]
        assert recorder.max_notification_id() == 3

    def test_select_notifications_start_limit_stop_topics(self) -> None:
        recorder = self.create_recorder()
        a = uuid4()
        topics = ["t:A", "t:B"]
        recorder.insert_events([stored(a, v, topics[v % 2]) for v in range(1, 11)])

        def ids(*args: Any, **kwargs: Any) -> list[int]:
            return [n.id for n in recorder.select_notifications(*args, **kwargs)]

        assert ids(1, 3) == [1, 2, 3]
        assert ids(None, 2) == [1, 2]
        assert ids(4, 100) == [4, 5, 6, 7, 8, 9, 10]
        assert ids(4, 100, stop=6) == [4, 5, 6]
        assert ids(4, 2, inclusive_of_start=False) == [5, 6]
        assert ids(1, 10, topics=["t:A"]) == [2, 4, 6, 8, 10]
        assert ids(3, 2, topics=["t:B"]) == [3, 5]
        assert ids(11, 10) == []
        (n,) = recorder.select_notifications(7, 1)
        assert (n.originator_id, n.originator_version, n.topic) == (a, 7, "t:B")
        assert n.state == f"{a}:7".encode()

    def test_concurrent_writers_lose_nothing_and_never_interleave_batches(
        self,
    ) -> None:
        recorder = self.create_recorder()
        results: list[list[int]] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def write() -> None:
            try:
                for _ in range(30):
                    a = uuid4()
                    ids = list(
                        recorder.insert_events([stored(a, v) for v in range(1, 11)])
                        or []
                    )
                    with lock:
                        results.append(ids)
            except BaseException as e:  # surfaced below
                errors.append(e)

        threads = [threading.Thread(target=write) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        for ids in results:
            assert ids == list(range(ids[0], ids[0] + 10))
        all_ids = sorted(i for ids in results for i in ids)
        assert all_ids == list(range(all_ids[0], all_ids[0] + 2400))
        selected: list[int] = []
        start: int | None = None
        while batch := recorder.select_notifications(
            start, 500, inclusive_of_start=False
        ):
            selected.extend(n.id for n in batch)
            start = batch[-1].id
        assert selected == all_ids

    def test_subscription_yields_notifications_as_they_are_committed(self) -> None:
        recorder = self.create_recorder()
        a = uuid4()
        recorder.insert_events([stored(a, 1)])
        seen: list[int] = []

        with recorder.subscribe(gt=1) as subscription:

            def write_later() -> None:
                time.sleep(0.05)
                recorder.insert_events([stored(a, 2), stored(a, 3)])

            writer = threading.Thread(target=write_later)
            writer.start()
            for notification in subscription:
                seen.append(notification.id)
                if len(seen) == 2:
                    break
            writer.join()
        assert seen == [2, 3]

    def test_wait_for_notification_is_woken_by_an_insert(self) -> None:
        recorder = self.create_recorder()
        assert recorder.wait_for_notification(0, 0.01) is False
        threading.Timer(0.05, recorder.insert_events, [[stored(uuid4(), 1)]]).start()
        assert recorder.wait_for_notification(0, 5.0) is True


class TrackingRecorderCases(RecorderCases):
    """What every tracking recorder does."""

    def create_recorder(self) -> TrackingRecorder:
        return self.factory().tracking_recorder()

    def test_tracking_positions_are_recorded_once_and_in_order(self) -> None:
        import pytest

        recorder = self.create_recorder()
        assert recorder.max_tracking_id("upstream") is None
        assert recorder.has_tracking_id("upstream", None)
        assert not recorder.has_tracking_id("upstream", 1)
        recorder.insert_tracking(Tracking("upstream", 1))
        recorder.insert_tracking(Tracking("upstream", 2))
        recorder.insert_tracking(Tracking("other", 7))
        assert recorder.max_tracking_id("upstream") == 2
        assert recorder.max_tracking_id("other") == 7
        assert recorder.has_tracking_id("upstream", 1)
        assert recorder.has_tracking_id("upstream", 2)
        assert not recorder.has_tracking_id("upstream", 3)
        with pytest.raises(IntegrityError):
            recorder.insert_tracking(Tracking("upstream", 2))
        assert recorder.max_tracking_id("upstream") == 2

    def test_wait_returns_when_position_is_recorded_and_times_out_otherwise(
        self,
    ) -> None:
        import pytest

        recorder = self.create_recorder()
        with pytest.raises(TimeoutError):
            recorder.wait("upstream", 1, timeout=0.05)
        threading.Timer(
            0.05, recorder.insert_tracking, [Tracking("upstream", 1)]
        ).start()
        recorder.wait("upstream", 1, timeout=5.0)
        assert recorder.has_tracking_id("upstream", 1)


class ProcessRecorderCases(ApplicationRecorderCases, TrackingRecorderCases):
    """Events and their tracking position recorded in one atomic step."""

    def create_recorder(self) -> ProcessRecorder:
        return self.factory().process_recorder()

    def test_events_and_tracking_are_recorded_together_or_not_at_all(self) -> None:
        import pytest

        recorder = self.create_recorder()
        a = uuid4()
        recorder.insert_events([stored(a, 1)], tracking=Tracking("up", 1))
        assert recorder.max_tracking_id("up") == 1
        # Conflicting event: the tracking position is not recorded either.
        with pytest.raises(IntegrityError):
            recorder.insert_events([stored(a, 1)], tracking=Tracking("up", 2))
        assert recorder.max_tracking_id("up") == 1
        # Already-processed position: the new events are not recorded either.
        with pytest.raises(IntegrityError):
            recorder.insert_events([stored(a, 2)], tracking=Tracking("up", 1))
        assert [s.originator_version for s in recorder.select_events(a)] == [1]
        # Processing with no new events still records the position.
        recorder.insert_events([], tracking=Tracking("up", 2))
        assert recorder.max_tracking_id("up") == 2
