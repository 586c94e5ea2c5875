"""esox._core.MemoryRecorder: in-memory application, tracking and process recorder."""

from __future__ import annotations

import threading
from uuid import UUID, uuid4

import pytest

from esox._core import MemoryRecorder, Notification, StoredEvent, Tracking
from esox.persistence.errors import IntegrityError, PersistenceError


def event(originator_id: UUID | str, version: int, topic: str = "t:E") -> StoredEvent:
    return StoredEvent(originator_id, version, topic, b"{}")


def stream(
    originator_id: UUID | str, versions: range, topic: str = "t:E"
) -> list[StoredEvent]:
    return [event(originator_id, v, topic) for v in versions]


# insert_events


def test_insert_returns_contiguous_notification_ids_in_batch_order() -> None:
    recorder = MemoryRecorder()
    a, b = uuid4(), uuid4()
    assert recorder.insert_events([event(a, 1), event(b, 1)]) == [1, 2]
    assert recorder.insert_events([event(a, 2), event(b, 2), event(a, 3)]) == [3, 4, 5]


def test_insert_empty_batch_returns_no_ids() -> None:
    recorder = MemoryRecorder()
    assert recorder.insert_events([]) == []
    assert recorder.max_notification_id() is None


def test_insert_accepts_tuples_and_iterables() -> None:
    recorder = MemoryRecorder()
    a = uuid4()
    assert recorder.insert_events((event(a, 1), event(a, 2))) == [1, 2]
    batch = (e for e in [event(a, 3)])
    assert recorder.insert_events(batch) == [3]  # type: ignore[arg-type]


def test_insert_ignores_unknown_keyword_arguments() -> None:
    recorder = MemoryRecorder()
    assert recorder.insert_events([event(uuid4(), 1)], something="else") == [1]


def test_insert_conflicting_version_stores_nothing() -> None:
    recorder = MemoryRecorder()
    a, b = uuid4(), uuid4()
    recorder.insert_events([event(a, 1)])
    with pytest.raises(IntegrityError) as info:
        recorder.insert_events([event(b, 1), event(a, 1)])
    assert str(a) in str(info.value)
    assert "version 1" in str(info.value)
    assert recorder.select_events(b) == []
    assert recorder.max_notification_id() == 1
    assert recorder.insert_events([event(b, 1)]) == [2]


def test_insert_duplicate_within_batch_stores_nothing() -> None:
    recorder = MemoryRecorder()
    a = uuid4()
    with pytest.raises(IntegrityError) as info:
        recorder.insert_events([event(a, 1), event(a, 2), event(a, 1)])
    assert str(a) in str(info.value)
    assert "version 1" in str(info.value)
    assert recorder.select_events(a) == []
    assert recorder.max_notification_id() is None


def test_integrity_error_names_str_originator() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events([event("order-7", 3)])
    with pytest.raises(IntegrityError, match=r"order-7.*version 3"):
        recorder.insert_events([event("order-7", 3)])


def test_integrity_error_is_a_persistence_error() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events([event("x", 1)])
    with pytest.raises(PersistenceError):
        recorder.insert_events([event("x", 1)])


def test_uuid_and_str_with_same_text_are_different_originators() -> None:
    recorder = MemoryRecorder()
    a = uuid4()
    recorder.insert_events([event(a, 1), event(str(a), 1)])
    assert recorder.select_events(a) == [event(a, 1)]
    assert recorder.select_events(str(a)) == [event(str(a), 1)]
    assert type(recorder.select_events(a)[0].originator_id) is UUID
    assert type(recorder.select_events(str(a))[0].originator_id) is str


def test_equal_uuids_are_the_same_originator() -> None:
    recorder = MemoryRecorder()
    a = uuid4()
    recorder.insert_events([event(a, 1)])
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(UUID(str(a)), 1)])
    assert recorder.select_events(UUID(a.hex)) == [event(a, 1)]


def test_insert_rejects_bad_originator_id_type() -> None:
    recorder = MemoryRecorder()
    with pytest.raises(TypeError, match="originator_id"):
        recorder.insert_events([event("a", 1), StoredEvent(123, 1, "t:E", b"")])  # type: ignore[arg-type]
    assert recorder.max_notification_id() is None


def test_insert_rejects_items_that_are_not_stored_events() -> None:
    recorder = MemoryRecorder()
    with pytest.raises(TypeError, match="stored_events"):
        recorder.insert_events([event("a", 1), ("a", 2, "t:E", b"")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="stored_events"):
        recorder.insert_events(42)  # type: ignore[arg-type]
    assert recorder.max_notification_id() is None


def test_insert_rejects_bad_tracking_type() -> None:
    recorder = MemoryRecorder()
    with pytest.raises(TypeError, match="tracking"):
        recorder.insert_events([event("a", 1)], tracking=("app", 1))  # type: ignore[arg-type]
    assert recorder.max_notification_id() is None


# insert_events with tracking (process recorder)


def test_insert_with_tracking_records_both() -> None:
    recorder = MemoryRecorder()
    ids = recorder.insert_events([event("a", 1)], tracking=Tracking("upstream", 5))
    assert ids == [1]
    assert recorder.max_tracking_id("upstream") == 5
    assert recorder.select_events("a") == [event("a", 1)]


def test_insert_with_already_recorded_tracking_stores_nothing() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events([event("a", 1)], tracking=Tracking("upstream", 5))
    with pytest.raises(IntegrityError, match="upstream"):
        recorder.insert_events([event("a", 2)], tracking=Tracking("upstream", 5))
    assert recorder.select_events("a") == [event("a", 1)]
    assert recorder.max_notification_id() == 1
    assert recorder.max_tracking_id("upstream") == 5


def test_insert_with_tracking_behind_the_max_stores_nothing() -> None:
    recorder = MemoryRecorder()
    recorder.insert_tracking(Tracking("upstream", 5))
    with pytest.raises(IntegrityError):
        recorder.insert_events([event("a", 1)], tracking=Tracking("upstream", 3))
    assert recorder.max_notification_id() is None
    assert recorder.max_tracking_id("upstream") == 5


def test_insert_with_conflicting_event_does_not_record_tracking() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events([event("a", 1)])
    with pytest.raises(IntegrityError):
        recorder.insert_events([event("a", 1)], tracking=Tracking("upstream", 1))
    assert recorder.max_tracking_id("upstream") is None
    assert not recorder.has_tracking_id("upstream", 1)


def test_insert_empty_batch_with_tracking_records_only_tracking() -> None:
    recorder = MemoryRecorder()
    assert recorder.insert_events([], tracking=Tracking("upstream", 1)) == []
    assert recorder.max_tracking_id("upstream") == 1
    assert recorder.max_notification_id() is None


# select_events


def test_select_events_returns_a_stream_in_version_order() -> None:
    recorder = MemoryRecorder()
    a, b = uuid4(), uuid4()
    recorder.insert_events([event(a, 1), event(b, 1), event(a, 2)])
    recorder.insert_events([event(a, 3)])
    assert recorder.select_events(a) == stream(a, range(1, 4))
    assert recorder.select_events(b) == [event(b, 1)]


def test_select_events_returns_the_inserted_objects() -> None:
    recorder = MemoryRecorder()
    e = event(uuid4(), 1)
    recorder.insert_events([e])
    assert recorder.select_events(e.originator_id)[0] is e


def test_select_events_of_unknown_originator_is_empty() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events([event("a", 1)])
    assert recorder.select_events(uuid4()) == []
    assert recorder.select_events("b") == []


def test_select_events_after_gt() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 6)))
    assert recorder.select_events("a", gt=3) == stream("a", range(4, 6))
    assert recorder.select_events("a", gt=0) == stream("a", range(1, 6))
    assert recorder.select_events("a", gt=5) == []


def test_select_events_up_to_lte() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 6)))
    assert recorder.select_events("a", lte=2) == stream("a", range(1, 3))
    assert recorder.select_events("a", lte=0) == []
    assert recorder.select_events("a", lte=99) == stream("a", range(1, 6))


def test_select_events_between_gt_and_lte() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 11)))
    assert recorder.select_events("a", gt=3, lte=6) == stream("a", range(4, 7))
    assert recorder.select_events("a", gt=6, lte=3) == []


def test_select_events_descending() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 6)))
    assert recorder.select_events("a", desc=True) == stream("a", range(5, 0, -1))
    assert recorder.select_events("a", gt=1, lte=3, desc=True) == stream(
        "a", range(3, 1, -1)
    )


def test_select_events_limit() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 6)))
    assert recorder.select_events("a", limit=2) == stream("a", range(1, 3))
    assert recorder.select_events("a", limit=0) == []
    assert recorder.select_events("a", limit=99) == stream("a", range(1, 6))
    assert recorder.select_events("a", gt=2, limit=2) == stream("a", range(3, 5))


def test_select_events_desc_with_limit_gives_the_latest() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 11)))
    assert recorder.select_events("a", desc=True, limit=1) == [event("a", 10)]
    assert recorder.select_events("a", lte=7, desc=True, limit=2) == [
        event("a", 7),
        event("a", 6),
    ]


def test_select_events_orders_versions_inserted_out_of_order() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events([event("a", 5), event("a", 2)])
    recorder.insert_events([event("a", 3)])
    versions = [e.originator_version for e in recorder.select_events("a")]
    assert versions == [2, 3, 5]
    assert [e.originator_version for e in recorder.select_events("a", gt=2, lte=4)] == [
        3
    ]


def test_select_events_rejects_bad_arguments() -> None:
    recorder = MemoryRecorder()
    with pytest.raises(TypeError, match="originator_id"):
        recorder.select_events(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="gt"):
        recorder.select_events("a", gt="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        recorder.select_events("a", limit=-1)


# select_notifications and max_notification_id


def test_max_notification_id() -> None:
    recorder = MemoryRecorder()
    assert recorder.max_notification_id() is None
    recorder.insert_events(stream("a", range(1, 4)))
    assert recorder.max_notification_id() == 3


def test_select_notifications_gives_ids_and_fields() -> None:
    recorder = MemoryRecorder()
    a = uuid4()
    recorder.insert_events([StoredEvent(a, 1, "t:Created", b"x"), event("b", 1)])
    notifications = recorder.select_notifications(1, 10)
    assert notifications == [
        Notification(a, 1, "t:Created", b"x", 1),
        Notification("b", 1, "t:E", b"{}", 2),
    ]
    assert all(type(n) is Notification for n in notifications)


def test_select_notifications_from_start_inclusive() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 11)))
    ids = [n.id for n in recorder.select_notifications(4, 3)]
    assert ids == [4, 5, 6]


def test_select_notifications_from_start_exclusive() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 11)))
    ids = [n.id for n in recorder.select_notifications(4, 3, inclusive_of_start=False)]
    assert ids == [5, 6, 7]
    assert recorder.select_notifications(10, 3, inclusive_of_start=False) == []


def test_select_notifications_start_none_means_from_the_beginning() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 4)))
    assert [n.id for n in recorder.select_notifications(None, 10)] == [1, 2, 3]
    ids = [
        n.id for n in recorder.select_notifications(None, 10, inclusive_of_start=False)
    ]
    assert ids == [1, 2, 3]


def test_select_notifications_start_below_one_means_from_the_beginning() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 4)))
    assert [n.id for n in recorder.select_notifications(0, 10)] == [1, 2, 3]
    assert [n.id for n in recorder.select_notifications(-5, 2)] == [1, 2]


def test_select_notifications_up_to_stop() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 11)))
    assert [n.id for n in recorder.select_notifications(3, 10, stop=5)] == [3, 4, 5]
    assert [n.id for n in recorder.select_notifications(3, 10, stop=99)] == list(
        range(3, 11)
    )
    assert recorder.select_notifications(6, 10, stop=5) == []
    assert recorder.select_notifications(1, 10, stop=0) == []


def test_select_notifications_limit() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 11)))
    assert [n.id for n in recorder.select_notifications(1, 2)] == [1, 2]
    assert recorder.select_notifications(1, 0) == []
    assert recorder.select_notifications(11, 10) == []
    with pytest.raises(ValueError, match="limit"):
        recorder.select_notifications(1, -1)


def test_select_notifications_filtered_by_topics() -> None:
    recorder = MemoryRecorder()
    topics = ["t:A", "t:B", "t:C"]
    recorder.insert_events([event("a", v, topics[v % 3]) for v in range(1, 13)])
    # ids equal versions here; topic of id i is topics[i % 3]
    selected = recorder.select_notifications(1, 100, topics=["t:A", "t:C"])
    assert [n.id for n in selected] == [i for i in range(1, 13) if i % 3 != 1]
    assert all(n.topic in ("t:A", "t:C") for n in selected)
    selected = recorder.select_notifications(4, 3, stop=11, topics=("t:B", "t:B"))
    assert [n.id for n in selected] == [4, 7, 10]
    selected = recorder.select_notifications(4, 10, stop=8, topics=["t:A", "t:B"])
    assert [n.id for n in selected] == [4, 6, 7]
    selected = recorder.select_notifications(
        3, 2, topics=["t:A"], inclusive_of_start=False
    )
    assert [n.id for n in selected] == [6, 9]


def test_select_notifications_with_unknown_topic_is_empty() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events(stream("a", range(1, 4)))
    assert recorder.select_notifications(1, 10, topics=["t:Nope"]) == []


def test_select_notifications_rejects_a_str_as_topics() -> None:
    recorder = MemoryRecorder()
    with pytest.raises(TypeError, match="topics"):
        recorder.select_notifications(1, 10, topics="t:E")


# tracking


def test_insert_tracking_and_max_tracking_id() -> None:
    recorder = MemoryRecorder()
    assert recorder.max_tracking_id("upstream") is None
    recorder.insert_tracking(Tracking("upstream", 1))
    recorder.insert_tracking(Tracking("upstream", 4))
    recorder.insert_tracking(Tracking("other", 2))
    assert recorder.max_tracking_id("upstream") == 4
    assert recorder.max_tracking_id("other") == 2
    assert recorder.max_tracking_id("unknown") is None


def test_insert_tracking_already_recorded_raises_integrity_error() -> None:
    recorder = MemoryRecorder()
    recorder.insert_tracking(Tracking("upstream", 3))
    with pytest.raises(IntegrityError, match="upstream"):
        recorder.insert_tracking(Tracking("upstream", 3))
    with pytest.raises(IntegrityError):
        recorder.insert_tracking(Tracking("upstream", 2))
    assert recorder.max_tracking_id("upstream") == 3


def test_insert_tracking_rejects_bad_type() -> None:
    recorder = MemoryRecorder()
    with pytest.raises(TypeError, match="tracking"):
        recorder.insert_tracking(("upstream", 1))  # type: ignore[arg-type]


def test_has_tracking_id() -> None:
    recorder = MemoryRecorder()
    assert recorder.has_tracking_id("upstream", None)
    assert not recorder.has_tracking_id("upstream", 1)
    recorder.insert_tracking(Tracking("upstream", 3))
    assert recorder.has_tracking_id("upstream", 1)
    assert recorder.has_tracking_id("upstream", 3)
    assert not recorder.has_tracking_id("upstream", 4)
    assert not recorder.has_tracking_id("other", 1)


# waiting


def insert_later(
    recorder: MemoryRecorder, delay: float, **kwargs: object
) -> threading.Timer:
    timer = threading.Timer(
        delay, recorder.insert_events, args=([event(uuid4(), 1)],), kwargs=kwargs
    )
    timer.start()
    return timer


def test_wait_for_notification_returns_true_at_once_when_already_there() -> None:
    recorder = MemoryRecorder()
    recorder.insert_events([event("a", 1)])
    assert recorder.wait_for_notification(0, 0)
    assert recorder.wait_for_notification(0, 10.0)


def test_wait_for_notification_times_out() -> None:
    recorder = MemoryRecorder()
    assert not recorder.wait_for_notification(0, 0)
    assert not recorder.wait_for_notification(0, 0.05)
    recorder.insert_events([event("a", 1)])
    assert not recorder.wait_for_notification(1, 0.05)


def test_wait_for_notification_is_woken_by_an_insert_from_another_thread() -> None:
    recorder = MemoryRecorder()
    timer = insert_later(recorder, 0.05)
    try:
        assert recorder.wait_for_notification(0, 30.0)
    finally:
        timer.join()
    assert recorder.max_notification_id() == 1


def test_wait_for_notification_rejects_nan_timeout() -> None:
    recorder = MemoryRecorder()
    with pytest.raises(ValueError, match="timeout"):
        recorder.wait_for_notification(0, float("nan"))


def test_wait_for_tracking_times_out() -> None:
    recorder = MemoryRecorder()
    assert not recorder.wait_for_tracking("upstream", 1, 0.05)
    recorder.insert_tracking(Tracking("upstream", 1))
    assert recorder.wait_for_tracking("upstream", 1, 0)
    assert not recorder.wait_for_tracking("upstream", 2, 0.05)


def test_wait_for_tracking_is_woken_by_insert_events_with_tracking() -> None:
    recorder = MemoryRecorder()
    timer = insert_later(recorder, 0.05, tracking=Tracking("upstream", 7))
    try:
        assert recorder.wait_for_tracking("upstream", 7, 30.0)
    finally:
        timer.join()


def test_wait_for_tracking_is_woken_by_insert_tracking() -> None:
    recorder = MemoryRecorder()
    timer = threading.Timer(
        0.05, recorder.insert_tracking, args=(Tracking("upstream", 9),)
    )
    timer.start()
    try:
        assert recorder.wait_for_tracking("upstream", 5, 30.0)
    finally:
        timer.join()


# concurrency


def test_concurrent_inserts_lose_and_duplicate_nothing() -> None:
    recorder = MemoryRecorder()
    threads, batches, batch_size = 10, 100, 10
    results: list[list[list[int]]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(t: int) -> None:
        try:
            barrier.wait()
            originator = f"thread-{t}"
            for b in range(batches):
                versions = range(b * batch_size + 1, (b + 1) * batch_size + 1)
                results[t].append(recorder.insert_events(stream(originator, versions)))
        except BaseException as e:  # reported below
            errors.append(e)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []

    total = threads * batches * batch_size
    all_ids = sorted(i for per_thread in results for ids in per_thread for i in ids)
    assert all_ids == list(range(1, total + 1))
    for per_thread in results:
        for ids in per_thread:
            assert ids == list(range(ids[0], ids[0] + batch_size))
    assert recorder.max_notification_id() == total

    notifications = recorder.select_notifications(1, total + 1)
    assert [n.id for n in notifications] == list(range(1, total + 1))
    for t in range(threads):
        selected = recorder.select_events(f"thread-{t}")
        assert [e.originator_version for e in selected] == list(
            range(1, batches * batch_size + 1)
        )
        ids = [i for ids in results[t] for i in ids]
        assert [(notifications[i - 1].originator_id) for i in ids] == [
            f"thread-{t}"
        ] * len(ids)


def test_concurrent_inserts_of_the_same_versions_store_each_once() -> None:
    recorder = MemoryRecorder()
    threads = 8
    succeeded: list[int] = []
    conflicts: list[int] = []
    barrier = threading.Barrier(threads)

    def work(t: int) -> None:
        barrier.wait()
        for v in range(1, 51):
            try:
                recorder.insert_events([event("shared", v), event(f"own-{t}", v)])
                succeeded.append(v)
            except IntegrityError:
                conflicts.append(v)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(succeeded) == list(range(1, 51))
    assert len(conflicts) == threads * 50 - 50
    assert [e.originator_version for e in recorder.select_events("shared")] == list(
        range(1, 51)
    )
    assert recorder.max_notification_id() == 100
