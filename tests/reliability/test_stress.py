"""Thread-safety stress: every Rust object shared by 8 threads at once.

MemoryRecorder, SqliteRecorder (file and ``:memory:``) over one
SqliteDatabase, Mapper (with native compression and encryption, and with a
Python transcoding called back from Rust), and the replay function. Mixed
operations from 8 threads; then: no lost or duplicated events, consistent
results, no deadlock (every join has a timeout; a hung thread fails the test),
and closing a database while others use it gives a clean InterfaceError, never
a crash.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from esox import _core
from esox._core import SqliteDatabase
from esox.persistence import Mapper, StoredEvent, Tracking
from esox.persistence.cipher import AESCipher
from esox.persistence.compression import ZlibCompressor
from esox.persistence.errors import (
    IntegrityError,
    InterfaceError,
    PersistenceError,
)
from esox.persistence.transcoding import JSONTranscoder, Transcoding
from esox.sqlite import SQLiteProcessRecorder
from tests.system_apps import Item, Items

THREADS = 8
JOIN_TIMEOUT = 25.0
TOPIC = "tests.stress:Happened"


def run_threads(target: Callable[[int], Any], n: int = THREADS) -> list[Any]:
    """Run ``target(i)`` in n threads started together; re-raise the first error."""
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def body(i: int) -> None:
        try:
            barrier.wait(10)
            results[i] = target(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    hung = [t.name for t in threads if t.is_alive()]
    if hung:
        pytest.fail(f"threads hung (deadlock?): {hung}")
    if errors:
        raise errors[0]
    return results


def make_recorder(kind: str, tmp_path: Path) -> Any:
    if kind == "memory":
        return _core.MemoryRecorder()
    if kind == "sqlite-file":
        return SQLiteProcessRecorder(str(tmp_path / "stress.sqlite"))
    return SQLiteProcessRecorder(":memory:")


@pytest.mark.parametrize("kind", ["memory", "sqlite-file", "sqlite-memory"])
def test_recorder_hammered_by_8_threads(kind: str, tmp_path: Path):
    recorder = make_recorder(kind, tmp_path)
    rounds = 60 if kind == "sqlite-file" else 150
    per_batch = 3

    def work(i: int) -> list[uuid.UUID]:
        rng = random.Random(i)
        mine: list[uuid.UUID] = []
        last_max = 0
        for r in range(rounds):
            oid = uuid.uuid4()
            events = [
                StoredEvent(oid, v, TOPIC, f"{i}:{r}:{v}".encode())
                for v in range(1, per_batch + 1)
            ]
            track = Tracking(f"up{i}", r + 1) if r % 2 else None
            ids = recorder.insert_events(events, tracking=track)
            assert ids is not None and len(ids) == per_batch
            assert ids == sorted(ids) and len(set(ids)) == per_batch
            mine.append(oid)
            # A conflicting batch writes nothing (all or nothing).
            with pytest.raises(IntegrityError):
                recorder.insert_events(
                    [StoredEvent(uuid.uuid4(), 1, TOPIC, b"x"), events[0]]
                )
            got = recorder.select_events(oid)
            assert [(e.originator_version, e.state) for e in got] == [
                (e.originator_version, e.state) for e in events
            ]
            assert (
                recorder.select_events(oid, desc=True, limit=1)[0].originator_version
                == 3
            )
            assert [
                e.originator_version for e in recorder.select_events(oid, gt=1, lte=2)
            ] == [2]
            current = recorder.max_notification_id() or 0
            assert current >= max(ids) and current >= last_max
            last_max = current
            start = rng.randint(1, current)
            page = recorder.select_notifications(start, 20)
            page_ids = [n.id for n in page]
            assert page_ids == sorted(set(page_ids)) and all(
                p >= start for p in page_ids
            )
            assert recorder.wait_for_notification(max(ids) - 1, 1.0)
            if r % 5 == 0:
                recorder.insert_tracking(Tracking(f"side{i}", r + 1))
                assert recorder.has_tracking_id(f"side{i}", r + 1)
                assert recorder.wait_for_tracking(f"side{i}", r + 1, 1.0)
                assert recorder.max_tracking_id(f"side{i}") == r + 1
            if track is not None:
                assert recorder.max_tracking_id(f"up{i}") == r + 1
        return mine

    try:
        results = run_threads(work)
        notifications = recorder.select_notifications(None, 1_000_000)
        ids = [n.id for n in notifications]
        total = THREADS * rounds * per_batch
        assert len(ids) == total, "events lost or duplicated"
        assert ids == list(range(1, total + 1)), "gaps or reordering"
        by_origin: dict[Any, list[int]] = {}
        for n in notifications:
            by_origin.setdefault(n.originator_id, []).append(n.originator_version)
        expected = {oid for mine in results for oid in mine}
        assert set(by_origin) == expected
        assert all(v == [1, 2, 3] for v in by_origin.values())
        for i in range(THREADS):
            # Odd rounds r carried Tracking(up<i>, r + 1); rounds is even.
            assert recorder.max_tracking_id(f"up{i}") == rounds
            assert recorder.max_tracking_id(f"side{i}") == (rounds - 1) // 5 * 5 + 1
    finally:
        if hasattr(recorder, "close"):
            recorder.close()


def test_waiters_are_woken_by_inserts_from_other_threads(tmp_path: Path):
    recorder = make_recorder("sqlite-file", tmp_path)
    woken: list[bool] = []

    def work(i: int) -> None:
        if i < 4:
            woken.append(recorder.wait_for_notification(i, 10.0))
            woken.append(recorder.wait_for_tracking("up", 3, 10.0))
        else:
            time.sleep(0.05 * i)
            recorder.insert_events([StoredEvent(uuid.uuid4(), 1, TOPIC, b"{}")])
            if i == 7:
                recorder.insert_tracking(Tracking("up", 3))

    try:
        run_threads(work)
        assert woken == [True] * 8
    finally:
        recorder.close()


@pytest.mark.parametrize("path", ["file", ":memory:"])
def test_close_while_in_use_gives_clean_errors(path: str, tmp_path: Path):
    db = SqliteDatabase(str(tmp_path / "c.sqlite") if path == "file" else ":memory:")
    recorder = SQLiteProcessRecorder(db)
    stop = threading.Event()
    errors: dict[int, list[BaseException]] = {}
    closed_at = threading.Event()

    def work(i: int) -> int:
        done = 0
        errors[i] = []
        while not stop.is_set():
            try:
                if i == 0 and done == 20:
                    db.close()
                    closed_at.set()
                op = done % 4
                if op == 0:
                    recorder.insert_events([StoredEvent(uuid.uuid4(), 1, TOPIC, b"{}")])
                elif op == 1:
                    recorder.select_notifications(None, 50)
                elif op == 2:
                    recorder.max_notification_id()
                else:
                    recorder.wait_for_notification(10**9, 0.01)
            except PersistenceError as e:
                errors[i].append(e)
                if closed_at.is_set() and len(errors[i]) > 5:
                    return done
            done += 1
            if done > 100_000:
                return done
        return done

    def stopper() -> None:
        closed_at.wait(15)
        time.sleep(0.3)
        stop.set()

    t = threading.Thread(target=stopper, daemon=True)
    t.start()
    run_threads(work)
    t.join(5)
    assert db.closed
    all_errors = [e for errs in errors.values() for e in errs]
    assert all_errors, "no thread noticed the close"
    unexpected = [e for e in all_errors if not isinstance(e, InterfaceError)]
    assert not unexpected, unexpected[:3]
    assert all("close" in str(e).lower() for e in all_errors), str(all_errors[0])
    with pytest.raises(InterfaceError):
        recorder.select_notifications(None, 1)
    with pytest.raises(InterfaceError):
        recorder.insert_events([StoredEvent(uuid.uuid4(), 1, TOPIC, b"{}")])
    db.close()  # idempotent


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


class PointAsList(Transcoding):
    type = Point
    name = "point"

    def encode(self, obj: Point) -> list[int]:
        return [obj.x, obj.y]

    def decode(self, data: list[int]) -> Point:
        return Point(*data)


def test_shared_mapper_encodes_and_decodes_from_8_threads():
    transcoder = JSONTranscoder()
    transcoder.register(PointAsList())
    cipher = AESCipher({"CIPHER_KEY": AESCipher.create_key()})
    mapper = Mapper(transcoder, compressor=ZlibCompressor(), cipher=cipher)

    def work(i: int) -> int:
        n = 0
        for r in range(150):
            item = Item(f"{i}-{r}")
            item.tag(f"t{i}")
            events = item.collect_events()
            # Attributes of every natively handled kind, and a custom type.
            events[1].__dict__["extra"] = {
                "p": Point(i, r),
                "d": Decimal(f"{i}.{r}"),
                "u": uuid.UUID(int=i * 1000 + r),
                "b": [True, None, 1.5, "é" * r],
            }
            stored = mapper.to_stored_events(events)
            assert stored[0].originator_id == item.id
            back = mapper.to_domain_events(stored)
            assert back[0].label == f"{i}-{r}"
            assert back[1].tag == f"t{i}"
            assert back[1].extra["p"] == Point(i, r)
            assert back[1].extra["d"] == Decimal(f"{i}.{r}")
            assert back[1].extra["u"] == uuid.UUID(int=i * 1000 + r)
            single = mapper.to_domain_event(mapper.to_stored_event(events[0]))
            assert single.label == f"{i}-{r}"
            assert mapper.decode(mapper.encode({"i": i, "r": r})) == {"i": i, "r": r}
            n += 1
        return n

    assert run_threads(work) == [150] * THREADS


def test_replay_shared_from_8_threads():
    app = Items()
    ids = app.create_many([f"item{k}" for k in range(16)])
    for k, item_id in enumerate(ids):
        for t in range(k):
            app.tag(item_id, f"tag{t}")

    def work(i: int) -> int:
        rng = random.Random(i)
        for _ in range(300):
            k = rng.randrange(len(ids))
            item = _core.replay(app.mapper, app.recorder, ids[k])
            assert item.label == f"item{k}"
            assert item.tags == [f"tag{t}" for t in range(k)]
            assert item.version == k + 1
            if k > 1:
                partial = _core.replay(app.mapper, app.recorder, ids[k], lte=2)
                assert partial.tags == ["tag0"]
            # Writers in the same threads: a new tag and a fresh aggregate.
            if rng.random() < 0.05:
                app.create(f"new-{i}")
        return 1

    try:
        assert run_threads(work) == [1] * THREADS
        for k, item_id in enumerate(ids):
            assert app.repository.get(item_id).tags == [f"tag{t}" for t in range(k)]
    finally:
        app.close()
