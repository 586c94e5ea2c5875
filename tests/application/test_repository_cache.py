"""The repository's aggregate cache: LRU, fast-forward, copies, threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest

from esox import Aggregate, Application, event
from esox.application.cache import LRUCache
from esox.examples.dogschool import Dog, DogSchool
from esox.persistence import IntegrityError


def sqlite_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "esox.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "dogs.db"),
        **extra,
    }


def test_cached_aggregates_are_handed_out_as_copies():
    school = DogSchool(env={"AGGREGATE_CACHE_MAXSIZE": "10"})
    dog_id = school.register_dog("Fido")
    first: Dog = school.repository.get(dog_id)
    first.add_trick("unsaved")
    second: Dog = school.repository.get(dog_id)
    assert second.tricks == []
    assert second is not first
    assert school.repository.cache is not None
    assert len(school.repository.cache) == 1


def test_fastforward_brings_cached_aggregate_up_to_date(tmp_path: Path):
    reader = DogSchool(env=sqlite_env(tmp_path, AGGREGATE_CACHE_MAXSIZE="10"))
    writer = DogSchool(env=sqlite_env(tmp_path))
    dog_id = writer.register_dog("Fido")
    assert reader.get_dog(dog_id)["tricks"] == ()
    writer.add_trick(dog_id, "sit")
    writer.add_trick(dog_id, "roll")
    assert reader.get_dog(dog_id)["tricks"] == ("sit", "roll")
    reader.close()
    writer.close()


def test_without_fastforward_the_cache_is_updated_on_save():
    school = DogSchool(
        env={"AGGREGATE_CACHE_MAXSIZE": "10", "AGGREGATE_CACHE_FASTFORWARD": "n"}
    )
    dog_id = school.register_dog("Fido")
    school.add_trick(dog_id, "sit")
    dog: Dog = school.repository.get(dog_id)
    assert dog.tricks == ["sit"]
    # Events written behind the application's back are not seen.
    other = Dog("Rex")
    school.events.recorder.insert_events(
        school.mapper.to_stored_events(other.collect_events())
    )
    assert school.repository.get(dog_id).version == 2


def test_lru_cache_forgets_least_recently_used():
    cache: LRUCache[str, int] = LRUCache(maxsize=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2
    try:
        cache.get("b")
    except KeyError:
        pass
    else:
        raise AssertionError("b should have been evicted")


def test_threads_sharing_a_cached_repository_lose_no_update(tmp_path: Path):
    school = DogSchool(env=sqlite_env(tmp_path, AGGREGATE_CACHE_MAXSIZE="100"))
    dog_id = school.register_dog("Fido")
    saved: list[str] = []
    lock = threading.Lock()

    def teach(worker: int) -> None:
        for i in range(25):
            trick = f"{worker}-{i}"
            while True:
                dog: Dog = school.repository.get(dog_id)
                dog.add_trick(trick)
                try:
                    school.save(dog)
                except IntegrityError:
                    continue
                with lock:
                    saved.append(trick)
                break

    threads = [threading.Thread(target=teach, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dog = school.repository.get(dog_id)
    assert sorted(dog.tricks) == sorted(saved)
    assert len(saved) == 150
    assert dog.version == 151
    school.close()


class Pair(Aggregate):
    """Consistent when ``a == b``: each event sets a and notes it, calls the
    hook, then sets b."""

    hook: Callable[[], None] = staticmethod(lambda: None)

    @event("Made")
    def __init__(self) -> None:
        self.a = self.b = 0
        self.history: list[int] = []

    @event("Bumped")
    def bump(self, n: int) -> None:
        self.a = n
        self.history.append(n)
        Pair.hook()
        self.b = n


class Pairs(Application[UUID]):
    env = {
        "AGGREGATE_CACHE_MAXSIZE": "10",
        "AGGREGATE_CACHE_FASTFORWARD_SKIPPING": "y",
    }


def bumped(pairs: Pairs, pair: Pair, n: int) -> None:
    pair.bump(n)
    pairs.save(pair)


def test_a_skipping_reader_never_gets_an_aggregate_being_fastforwarded():
    pairs = Pairs()
    pair = Pair()
    pairs.save(pair)
    pairs.repository.get(pair.id)  # cached at version 1
    bumped(pairs, pair, 1)
    entered, proceed = threading.Event(), threading.Event()

    def pause() -> None:
        entered.set()
        assert proceed.wait(10)

    Pair.hook = staticmethod(pause)  # type: ignore[assignment]
    try:
        forwarder = threading.Thread(target=pairs.repository.get, args=[pair.id])
        forwarder.start()
        assert entered.wait(10)
        Pair.hook = staticmethod(lambda: None)  # type: ignore[assignment]
        # The forwarder holds the lock, half way through applying "Bumped".
        read: Pair = pairs.repository.get(pair.id)
        assert (read.a, read.b) in [(0, 0), (1, 1)]
    finally:
        proceed.set()
        forwarder.join(10)
    assert pairs.repository.get(pair.id).b == 1


def test_an_apply_that_raises_leaves_the_cached_aggregate_as_it_was():
    pairs = Pairs()
    pair = Pair()
    pairs.save(pair)
    pairs.repository.get(pair.id)
    bumped(pairs, pair, 1)

    def fail() -> None:
        raise RuntimeError("apply failed half way")

    Pair.hook = staticmethod(fail)  # type: ignore[assignment]
    try:
        with pytest.raises(RuntimeError, match="half way"):
            pairs.repository.get(pair.id)
    finally:
        Pair.hook = staticmethod(lambda: None)  # type: ignore[assignment]
    read: Pair = pairs.repository.get(pair.id)
    assert (read.version, read.a, read.b, read.history) == (2, 1, 1, [1])


def test_readers_skipping_while_others_save_get_consistent_aggregates():
    pairs = Pairs()
    pair = Pair()
    pairs.save(pair)
    stop = threading.Event()
    Pair.hook = staticmethod(lambda: time.sleep(0.0001))  # type: ignore[assignment]
    bad: list[tuple[int, int, int]] = []

    def read() -> None:
        while not stop.is_set():
            got: Pair = pairs.repository.get(pair.id)
            if got.a != got.b or got.version != got.b + 1:
                bad.append((got.version, got.a, got.b))

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        for n in range(1, 300):
            bumped(pairs, pair, n)
    finally:
        stop.set()
        for thread in readers:
            thread.join(10)
        Pair.hook = staticmethod(lambda: None)  # type: ignore[assignment]
    assert bad == []


def test_without_skipping_readers_the_cached_aggregate_is_fastforwarded_in_place():
    # As eventsourcing does: one cached object, brought up to date where it is.
    school = DogSchool(env={"AGGREGATE_CACHE_MAXSIZE": "10"})
    dog_id = school.register_dog("Fido")
    school.repository.get(dog_id)
    cache = school.repository.cache
    assert cache is not None
    cached = cache.get(dog_id)
    school.add_trick(dog_id, "sit")
    school.add_trick(dog_id, "roll")
    assert school.repository.get(dog_id).tricks == ["sit", "roll"]
    assert cache.get(dog_id) is cached
    assert cached.tricks == ["sit", "roll"]
