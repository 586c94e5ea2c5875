"""The repository's aggregate cache: LRU, fast-forward, copies, threads."""

from __future__ import annotations

import threading
from pathlib import Path

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
