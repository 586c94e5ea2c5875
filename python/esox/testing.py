"""Reusable test cases for recorders: every esox recorder passes the same suite.

Subclass a case class in a pytest module and implement ``create_factory``
(or the ``create_*_recorder`` methods) to check a recorder of your own::

    class TestMyApplicationRecorder(ApplicationRecorderCases):
        def create_factory(self) -> InfrastructureFactory:
            return InfrastructureFactory.construct(Environment("app", {...}))

Each backend's own tests then keep only what is particular to it (its
tables, its files, its server). pytest is needed to run them (it is not a
dependency of esox itself).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pytest

from esox.domain import DomainEvent
from esox.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Tracking,
    TrackingRecorder,
)

__all__ = [
    "AggregateRecorderCases",
    "ApplicationRecorderCases",
    "InfrastructureFactoryCases",
    "ProcessRecorderCases",
    "TrackingRecorderCases",
    "TranscoderCases",
    "in_threads",
]

TOPIC = "esox.testing:Happened"


class Happened(DomainEvent):
    """The event that the factory cases store and read back."""

    what: str


def stored(originator_id: UUID | str, version: int, topic: str = TOPIC) -> StoredEvent:
    """A stored event whose state says who and which version it is."""
    return StoredEvent(
        originator_id, version, topic, f"{originator_id}:{version}".encode()
    )


def in_threads(count: int, work: Callable[[int], object]) -> None:
    """Run ``work(0)`` ... ``work(count - 1)`` at once, one thread each (they
    start together, at a barrier); re-raise the first error any raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as e:  # re-raised below, in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


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
        recorder.insert_events([stored(uuid4(), 1)])

        def versions(**kwargs: Any) -> list[int]:
            return [s.originator_version for s in recorder.select_events(a, **kwargs)]

        assert versions() == list(range(1, 11))
        assert versions(gt=7) == [8, 9, 10]
        assert versions(lte=3) == [1, 2, 3]
        assert versions(gt=2, lte=5) == [3, 4, 5]
        assert versions(gt=6, lte=3) == []
        assert versions(desc=True) == list(range(10, 0, -1))
        assert versions(limit=2) == [1, 2]
        assert versions(limit=0) == []
        assert versions(desc=True, limit=2) == [10, 9]
        assert versions(desc=True, lte=5, limit=1) == [5]
        assert versions(gt=3, limit=2) == [4, 5]
        assert versions(desc=True, gt=8) == [10, 9]
        assert list(recorder.select_events(a, limit=1)) == [stored(a, 1)]

    def test_select_events_orders_versions_inserted_out_of_order(self) -> None:
        recorder = self.create_recorder()
        a = uuid4()
        recorder.insert_events([stored(a, 5), stored(a, 2)])
        recorder.insert_events([stored(a, 3)])
        assert [s.originator_version for s in recorder.select_events(a)] == [2, 3, 5]

    def test_select_events_rejects_bad_arguments_naming_them(self) -> None:
        recorder = self.create_recorder()
        with pytest.raises(TypeError, match="originator_id"):
            recorder.select_events(1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="gt"):
            recorder.select_events(uuid4(), gt="1")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="limit"):
            recorder.select_events(uuid4(), limit=-1)

    def test_insert_accepts_tuples_iterables_and_ignores_unknown_keywords(
        self,
    ) -> None:
        recorder = self.create_recorder()
        a = uuid4()
        recorder.insert_events((stored(a, 1), stored(a, 2)))
        recorder.insert_events(e for e in [stored(a, 3)])  # type: ignore[arg-type]
        recorder.insert_events([stored(a, 4)], something="else")
        assert [s.originator_version for s in recorder.select_events(a)] == [
            1,
            2,
            3,
            4,
        ]

    def test_what_is_not_a_batch_of_stored_events_is_refused_storing_nothing(
        self,
    ) -> None:
        recorder = self.create_recorder()
        a = uuid4()
        with pytest.raises(TypeError):
            recorder.insert_events([stored(a, 1), (a, 2, TOPIC, b"")])  # type: ignore[list-item]
        with pytest.raises(TypeError):
            recorder.insert_events(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"originator_id|UUID or a str"):
            recorder.insert_events([stored(a, 1), StoredEvent(123, 2, TOPIC, b"")])  # type: ignore[arg-type]
        assert list(recorder.select_events(a)) == []

    def test_conflicting_version_is_refused_and_nothing_of_the_batch_is_stored(
        self,
    ) -> None:
        recorder = self.create_recorder()
        a, b = uuid4(), uuid4()
        recorder.insert_events([stored(a, 1)])
        with pytest.raises(IntegrityError) as info:
            recorder.insert_events([stored(b, 1), stored(b, 2), stored(a, 1)])
        # The error names the originator and the version that conflict.
        assert str(a) in str(info.value) or a.hex in str(info.value)
        assert "version 1" in str(info.value)
        assert list(recorder.select_events(b)) == []
        with pytest.raises(IntegrityError, match="version 2"):
            recorder.insert_events([stored(b, 1), stored(b, 2), stored(b, 2)])
        assert list(recorder.select_events(b)) == []
        assert list(recorder.select_events(a)) == [stored(a, 1)]
        # The failed batches leave the recorder usable.
        recorder.insert_events([stored(b, 1)])
        assert list(recorder.select_events(b)) == [stored(b, 1)]

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
        assert recorder.insert_events([]) == []
        assert recorder.max_notification_id() is None
        a, b = uuid4(), uuid4()
        assert recorder.insert_events([stored(a, 1), stored(b, 1)]) == [1, 2]
        assert recorder.insert_events([stored(a, 2), stored(b, 2), stored(a, 3)]) == [
            3,
            4,
            5,
        ]
        assert recorder.max_notification_id() == 5

    def test_a_refused_batch_uses_no_id_twice(self) -> None:
        recorder = self.create_recorder()
        a = uuid4()
        recorder.insert_events([stored(a, 1)])
        with pytest.raises(IntegrityError):
            recorder.insert_events([stored(uuid4(), 1), stored(a, 1)])
        assert recorder.max_notification_id() == 1
        (after,) = recorder.insert_events([stored(a, 2)]) or [0]
        assert after > 1
        assert [n.id for n in recorder.select_notifications(None, 10)] == [1, after]

    def test_notifications_carry_their_ids_and_every_field(self) -> None:
        recorder = self.create_recorder()
        a, b = uuid4(), uuid4()
        recorder.insert_events([StoredEvent(a, 1, "t:A", b"\x00\xff"), stored(b, 1)])
        assert recorder.select_notifications(1, 10) == [
            Notification(a, 1, "t:A", b"\x00\xff", 1),
            Notification(b, 1, TOPIC, f"{b}:1".encode(), 2),
        ]
        first = recorder.select_notifications(1, 10)[0]
        assert type(first.originator_id) is UUID
        assert recorder.max_notification_id() == 2

    def test_select_notifications_edges(self) -> None:
        recorder = self.create_recorder()
        recorder.insert_events([stored(uuid4(), 1) for _ in range(10)])

        def ids(*args: Any, **kwargs: Any) -> list[int]:
            return [n.id for n in recorder.select_notifications(*args, **kwargs)]

        assert ids(4, 3, inclusive_of_start=False) == [5, 6, 7]
        assert ids(10, 3, inclusive_of_start=False) == []
        assert ids(None, 3, inclusive_of_start=False) == [1, 2, 3]
        assert ids(0, 2) == [1, 2]
        assert ids(-5, 2) == [1, 2]
        assert ids(3, 10, stop=99) == list(range(3, 11))
        assert ids(6, 10, stop=5) == []
        assert ids(1, 10, stop=0) == []
        assert ids(1, 0) == []
        with pytest.raises(ValueError, match="limit"):
            recorder.select_notifications(1, -1)

    def test_select_notifications_by_topics(self) -> None:
        recorder = self.create_recorder()
        topics = ["t:A", "t:B", "t:C"]
        a = uuid4()
        recorder.insert_events([stored(a, v, topics[v % 3]) for v in range(1, 13)])

        def ids(*args: Any, **kwargs: Any) -> list[int]:
            return [n.id for n in recorder.select_notifications(*args, **kwargs)]

        every_but_a = [i for i in range(1, 13) if i % 3 != 1]
        assert ids(1, 100, topics=["t:A", "t:C"]) == every_but_a
        assert ids(4, 3, stop=11, topics=("t:B", "t:B")) == [4, 7, 10]
        assert ids(4, 10, stop=8, topics=["t:A", "t:B"]) == [4, 6, 7]
        assert ids(3, 2, topics=["t:A"], inclusive_of_start=False) == [6, 9]
        assert ids(1, 10, topics=["t:Nope"]) == []
        assert ids(1, 100, topics=[]) == list(range(1, 13))
        with pytest.raises(TypeError, match=r"topics|not a str"):
            recorder.select_notifications(1, 10, topics="t:A")

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
        lock = threading.Lock()

        def write(_: int) -> None:
            for _ in range(30):
                a = uuid4()
                ids = recorder.insert_events([stored(a, v) for v in range(1, 11)])
                with lock:
                    results.append(list(ids or []))

        in_threads(8, write)
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

    def test_a_stopped_subscription_ends_even_with_notifications_in_hand(
        self,
    ) -> None:
        recorder = self.create_recorder()
        a = uuid4()
        recorder.insert_events([stored(a, 1), stored(a, 2), stored(a, 3)])
        seen = []
        with recorder.subscribe(gt=0) as subscription:
            for notification in subscription:
                seen.append(notification.id)
                subscription.stop()
        assert seen == [1]

    def test_wait_for_notification_is_woken_by_an_insert(self) -> None:
        recorder = self.create_recorder()
        assert recorder.wait_for_notification(0, 0.01) is False
        timer = threading.Timer(0.05, recorder.insert_events, [[stored(uuid4(), 1)]])
        timer.start()
        try:
            assert recorder.wait_for_notification(0, 5.0) is True
        finally:
            timer.join()

    def test_wait_for_notification_returns_at_once_or_times_out(self) -> None:
        recorder = self.create_recorder()
        assert not recorder.wait_for_notification(0, 0)
        assert not recorder.wait_for_notification(0, 0.05)
        recorder.insert_events([stored(uuid4(), 1)])
        assert recorder.wait_for_notification(0, 0)
        assert recorder.wait_for_notification(0, 10)
        assert not recorder.wait_for_notification(1, 0.05)
        with pytest.raises(ValueError, match="timeout"):
            recorder.wait_for_notification(0, float("nan"))


class TrackingRecorderCases(RecorderCases):
    """What every tracking recorder does."""

    def create_recorder(self) -> TrackingRecorder:
        return self.factory().tracking_recorder()

    def test_tracking_positions_are_recorded_once_and_in_order(self) -> None:
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
        with pytest.raises(IntegrityError, match="not greater than 2"):
            recorder.insert_tracking(Tracking("upstream", 2))
        with pytest.raises(IntegrityError, match="upstream"):
            recorder.insert_tracking(Tracking("upstream", 1))
        assert recorder.max_tracking_id("upstream") == 2
        assert not recorder.has_tracking_id("nobody", 1)
        with pytest.raises(TypeError, match="tracking"):
            recorder.insert_tracking(("upstream", 5))  # type: ignore[arg-type]

    def test_wait_returns_when_position_is_recorded_and_times_out_otherwise(
        self,
    ) -> None:
        recorder = self.create_recorder()
        with pytest.raises(TimeoutError):
            recorder.wait("upstream", 1, timeout=0.05)
        threading.Timer(
            0.05, recorder.insert_tracking, [Tracking("upstream", 1)]
        ).start()
        recorder.wait("upstream", 1, timeout=5.0)
        assert recorder.has_tracking_id("upstream", 1)
        assert not recorder.wait_for_tracking("upstream", 2, 0.05)
        # A position already passed returns at once.
        recorder.insert_tracking(Tracking("upstream", 7))
        assert recorder.wait_for_tracking("upstream", 3, 0)
        with pytest.raises(ValueError, match="timeout"):
            recorder.wait_for_tracking("upstream", 2, float("nan"))


class ProcessRecorderCases(ApplicationRecorderCases, TrackingRecorderCases):
    """Events and their tracking position recorded in one atomic step."""

    def create_recorder(self) -> ProcessRecorder:
        return self.factory().process_recorder()

    def test_events_and_tracking_are_recorded_together_or_not_at_all(self) -> None:
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

    def test_a_position_not_beyond_the_last_stores_no_event_and_no_id(self) -> None:
        recorder = self.create_recorder()
        a = uuid4()
        assert recorder.insert_events([stored(a, 1)], tracking=Tracking("up", 5)) == [1]
        for behind in (5, 3):
            with pytest.raises(IntegrityError, match="notification_id"):
                recorder.insert_events([stored(a, 2)], tracking=Tracking("up", behind))
        assert list(recorder.select_events(a)) == [stored(a, 1)]
        assert recorder.max_tracking_id("up") == 5
        assert recorder.insert_events([stored(a, 2)], tracking=Tracking("up", 6)) == [2]

    def test_an_empty_batch_records_only_its_position_and_only_once(self) -> None:
        recorder = self.create_recorder()
        assert recorder.insert_events([], tracking=Tracking("up", 1)) == []
        assert recorder.max_tracking_id("up") == 1
        assert recorder.max_notification_id() is None
        with pytest.raises(IntegrityError):
            recorder.insert_events([], tracking=Tracking("up", 1))

    def test_a_tracking_that_is_not_one_is_refused_storing_nothing(self) -> None:
        recorder = self.create_recorder()
        with pytest.raises(TypeError, match="tracking"):
            recorder.insert_events([stored(uuid4(), 1)], tracking=("up", 1))
        assert recorder.max_notification_id() is None

    def test_wait_for_tracking_is_woken_by_events_recorded_with_it(self) -> None:
        recorder = self.create_recorder()
        timer = threading.Timer(
            0.05,
            recorder.insert_events,
            [[stored(uuid4(), 1)]],
            {"tracking": Tracking("up", 7)},
        )
        timer.start()
        try:
            assert recorder.wait_for_tracking("up", 7, 5.0)
        finally:
            timer.join()


class InfrastructureFactoryCases(RecorderCases):
    """What every persistence module's factory does (``create_factory`` gives
    one over the backend under test)."""

    def test_the_factory_makes_recorders_of_every_kind(self) -> None:
        factory = self.factory()
        assert isinstance(factory.aggregate_recorder(), AggregateRecorder)
        assert isinstance(factory.aggregate_recorder("snapshots"), AggregateRecorder)
        assert isinstance(factory.application_recorder(), ApplicationRecorder)
        assert isinstance(factory.tracking_recorder(), TrackingRecorder)
        assert isinstance(factory.process_recorder(), ProcessRecorder)

    def test_snapshots_are_kept_apart_from_events(self) -> None:
        factory = self.factory()
        events, snapshots = (
            factory.application_recorder(),
            factory.aggregate_recorder("snapshots"),
        )
        a = uuid4()
        events.insert_events([stored(a, 1)])
        snapshots.insert_events([stored(a, 7)])
        assert list(events.select_events(a)) == [stored(a, 1)]
        assert list(snapshots.select_events(a, desc=True, limit=1)) == [stored(a, 7)]
        with pytest.raises(IntegrityError, match="version 7"):
            snapshots.insert_events([stored(a, 7)])

    def test_a_tracking_recorder_of_a_given_subclass(self) -> None:
        factory = self.factory()
        base = type(factory.tracking_recorder())
        custom = type("CustomTrackingRecorder", (base,), {})
        recorder = factory.tracking_recorder(custom)
        assert type(recorder) is custom
        recorder.insert_tracking(Tracking("up", 1))
        assert recorder.max_tracking_id("up") == 1

    def test_the_mapper_round_trips_events_through_the_recorders(self) -> None:
        factory = self.factory()
        store = factory.event_store(
            mapper=factory.mapper(), recorder=factory.application_recorder()
        )
        event = Happened(
            originator_id=uuid4(),
            originator_version=1,
            timestamp=Happened.create_timestamp(),
            what="it",
        )
        store.put([event])
        (got,) = store.get(event.originator_id)
        assert type(got) is Happened
        assert got.__dict__ == event.__dict__

    def test_closing_twice_is_harmless(self) -> None:
        factory = self.create_factory()
        factory.application_recorder()
        factory.close()
        factory.close()


class TranscoderCases:
    """What every transcoder does: built-in types and registered transcodings
    round-trip. ``create_transcoder`` gives the transcoder under test."""

    def create_transcoder(self) -> Any:
        from esox.persistence import JSONTranscoder

        return JSONTranscoder()

    def test_builtin_types_round_trip(self) -> None:
        from datetime import UTC, date, datetime
        from decimal import Decimal

        transcoder = self.create_transcoder()
        data = {
            "none": None,
            "bool": True,
            "int": -(2**63),
            "float": 1.5,
            "str": 'héllo \u2603 "quoted"',
            "list": [1, [2, 3]],
            "dict": {"a": {"b": 1}},
            "uuid": uuid4(),
            "decimal": Decimal("12.345"),
            "datetime": datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
            "date": date(2026, 1, 2),
            "bytes": b"\x00\xff",
        }
        assert transcoder.decode(transcoder.encode(data)) == data
        assert isinstance(transcoder.encode(data), bytes)

    def test_a_registered_transcoding_round_trips_its_type(self) -> None:
        from esox.persistence import Transcoding

        class Point:
            def __init__(self, x: int, y: int) -> None:
                self.x, self.y = x, y

            def __eq__(self, other: object) -> bool:
                return isinstance(other, Point) and (self.x, self.y) == (
                    other.x,
                    other.y,
                )

            __hash__ = None  # type: ignore[assignment]

        class PointAsList(Transcoding):
            type = Point
            name = "point"

            def encode(self, obj: Point) -> list[int]:
                return [obj.x, obj.y]

            def decode(self, data: list[int]) -> Point:
                return Point(*data)

        transcoder = self.create_transcoder()
        transcoder.register(PointAsList())
        data = {"points": [Point(1, 2), Point(3, 4)]}
        assert transcoder.decode(transcoder.encode(data)) == data

    def test_an_unknown_type_is_a_type_error_naming_it(self) -> None:
        class Unknown:
            pass

        with pytest.raises(TypeError, match="Unknown"):
            self.create_transcoder().encode({"x": Unknown()})
