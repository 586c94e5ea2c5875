"""esox._core.MemoryRecorder: in-memory application, tracking and process recorder."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from esox._core import MemoryRecorder
from esox.persistence.errors import IntegrityError, PersistenceError
from esox.testing import in_threads
from tests.stored_events import event

# insert_events


def test_a_refused_batch_leaves_the_ids_contiguous() -> None:
    # The conflict itself is the contract's (esox.testing); unlike
    # PostgreSQL's sequence, memory uses up no id for a refused batch.
    recorder = MemoryRecorder()
    a, b = uuid4(), uuid4()
    recorder.insert_events([event(a, 1)])
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(b, 1), event(a, 1)])
    assert recorder.insert_events([event(b, 1)]) == [2]


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


# select_events


def test_select_events_returns_the_inserted_objects() -> None:
    recorder = MemoryRecorder()
    e = event(uuid4(), 1)
    recorder.insert_events([e])
    assert recorder.select_events(e.originator_id)[0] is e


# concurrency


def test_concurrent_inserts_of_the_same_versions_store_each_once() -> None:
    recorder = MemoryRecorder()
    threads = 8
    succeeded: list[int] = []
    conflicts: list[int] = []

    def work(t: int) -> None:
        for v in range(1, 51):
            try:
                recorder.insert_events([event("shared", v), event(f"own-{t}", v)])
                succeeded.append(v)
            except IntegrityError:
                conflicts.append(v)

    in_threads(threads, work)
    assert sorted(succeeded) == list(range(1, 51))
    assert len(conflicts) == threads * 50 - 50
    assert [e.originator_version for e in recorder.select_events("shared")] == list(
        range(1, 51)
    )
    assert recorder.max_notification_id() == 100
