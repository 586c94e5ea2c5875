"""An unchanged eventsourcing 9.x application: its stock persistence against esox's
drop-in modules (``PERSISTENCE_MODULE=esox.dropin.*``), side by side.

Run: pytest benches/bench_dropin.py --benchmark-only, then benches/report.py.
Each group has an ``esox`` member (the drop-in) and an ``eventsourcing`` one
(``eventsourcing.popo`` or ``eventsourcing.sqlite``), per persistence kind.
``app.save`` and ``app.repository.get`` include eventsourcing's own domain
model work (the same on both sides); ``app.events.get`` and
``notification_log.select`` are persistence alone.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

N_TRICKS = 100
N_NOTIFICATIONS = 100
N_SAVED = 10


class Dog(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.tricks: list[str] = []

    @event("TrickAdded")
    def add_trick(self, trick: str) -> None:
        self.tricks.append(trick)


class DogSchool(Application[UUID]):
    """eventsourcing's README example, as its users write it."""

    log_section_size = N_NOTIFICATIONS

    def register_dog(self, name: str) -> UUID:
        dog = Dog(name)
        self.save(dog)
        return dog.id

    def add_trick(self, dog_id: UUID, trick: str) -> None:
        dog: Dog = self.repository.get(dog_id)
        dog.add_trick(trick)
        self.save(dog)

    def get_dog(self, dog_id: UUID) -> dict[str, Any]:
        dog: Dog = self.repository.get(dog_id)
        return {"name": dog.name, "tricks": tuple(dog.tricks)}


MODULES = {
    ("memory", "esox"): "esox.dropin.memory",
    ("memory", "eventsourcing"): "eventsourcing.popo",
    ("sqlite", "esox"): "esox.dropin.sqlite",
    ("sqlite", "eventsourcing"): "eventsourcing.sqlite",
}


@pytest.fixture(params=["memory", "sqlite"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def school(kind: str, library: str, directory: str) -> DogSchool:
    env = {"PERSISTENCE_MODULE": MODULES[kind, library]}
    if kind == "sqlite":
        env["SQLITE_DBNAME"] = os.path.join(directory, f"{library}.sqlite")
    return DogSchool(env=env)


@pytest.fixture
def directory() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="esox-bench-") as path:
        yield path


def new_dog(n_events: int) -> Dog:
    dog = Dog("Fido")
    for i in range(n_events - 1):
        dog.add_trick(f"trick {i}")
    return dog


def bench_register(benchmark: Any, kind: str, library: str, directory: str) -> None:
    app = school(kind, library, directory)
    dog_id = benchmark(app.register_dog, "Fido")
    assert app.get_dog(dog_id)["name"] == "Fido"
    app.close()


def bench_save(benchmark: Any, kind: str, library: str, directory: str) -> None:
    app = school(kind, library, directory)
    benchmark.pedantic(
        app.save,
        setup=lambda: ((new_dog(N_SAVED),), {}),
        rounds=200,
        warmup_rounds=10,
    )
    assert app.recorder.max_notification_id() == 210 * N_SAVED
    app.close()


def bench_repository_get(
    benchmark: Any, kind: str, library: str, directory: str
) -> None:
    app = school(kind, library, directory)
    dog = new_dog(N_TRICKS)
    app.save(dog)
    copy = benchmark(app.repository.get, dog.id)
    assert copy.tricks == dog.tricks
    app.close()


def bench_event_store_get(
    benchmark: Any, kind: str, library: str, directory: str
) -> None:
    app = school(kind, library, directory)
    dog = new_dog(N_TRICKS)
    app.save(dog)
    events = benchmark(lambda: list(app.events.get(dog.id)))
    assert len(events) == N_TRICKS
    app.close()


def bench_select(benchmark: Any, kind: str, library: str, directory: str) -> None:
    app = school(kind, library, directory)
    app.save(new_dog(N_NOTIFICATIONS))
    notifications = benchmark(
        app.notification_log.select, start=1, limit=N_NOTIFICATIONS
    )
    assert len(notifications) == N_NOTIFICATIONS
    app.close()


@pytest.mark.benchmark(group="drop-in: register dog (create, save 1 event)")
def test_register_esox(benchmark: Any, kind: str, directory: str) -> None:
    bench_register(benchmark, kind, "esox", directory)


@pytest.mark.benchmark(group="drop-in: register dog (create, save 1 event)")
def test_register_eventsourcing(benchmark: Any, kind: str, directory: str) -> None:
    bench_register(benchmark, kind, "eventsourcing", directory)


@pytest.mark.benchmark(group=f"drop-in: app.save (aggregate of {N_SAVED} events)")
def test_save_esox(benchmark: Any, kind: str, directory: str) -> None:
    bench_save(benchmark, kind, "esox", directory)


@pytest.mark.benchmark(group=f"drop-in: app.save (aggregate of {N_SAVED} events)")
def test_save_eventsourcing(benchmark: Any, kind: str, directory: str) -> None:
    bench_save(benchmark, kind, "eventsourcing", directory)


@pytest.mark.benchmark(group=f"drop-in: app.repository.get ({N_TRICKS} events)")
def test_repository_get_esox(benchmark: Any, kind: str, directory: str) -> None:
    bench_repository_get(benchmark, kind, "esox", directory)


@pytest.mark.benchmark(group=f"drop-in: app.repository.get ({N_TRICKS} events)")
def test_repository_get_eventsourcing(
    benchmark: Any, kind: str, directory: str
) -> None:
    bench_repository_get(benchmark, kind, "eventsourcing", directory)


@pytest.mark.benchmark(group=f"drop-in: app.events.get ({N_TRICKS} events)")
def test_event_store_get_esox(benchmark: Any, kind: str, directory: str) -> None:
    bench_event_store_get(benchmark, kind, "esox", directory)


@pytest.mark.benchmark(group=f"drop-in: app.events.get ({N_TRICKS} events)")
def test_event_store_get_eventsourcing(
    benchmark: Any, kind: str, directory: str
) -> None:
    bench_event_store_get(benchmark, kind, "eventsourcing", directory)


@pytest.mark.benchmark(
    group=f"drop-in: notification_log.select ({N_NOTIFICATIONS} notifications)"
)
def test_select_esox(benchmark: Any, kind: str, directory: str) -> None:
    bench_select(benchmark, kind, "esox", directory)


@pytest.mark.benchmark(
    group=f"drop-in: notification_log.select ({N_NOTIFICATIONS} notifications)"
)
def test_select_eventsourcing(benchmark: Any, kind: str, directory: str) -> None:
    bench_select(benchmark, kind, "eventsourcing", directory)
