"""Aggregate replay of a short history: esox's one-call Rust replay against
eventsourcing 9.x.

Run: pytest benches/bench_replay.py --benchmark-only
A Dog with 10 events (registered, then 9 tricks) is reconstructed from
in-memory persistence and from an SQLite file: esox by ``replay_aggregate``
(what ``Repository.get`` does), eventsourcing by ``app.repository.get``.
(eventsourcing under ``python -O`` skips its assertions and is about three
times faster: run this file with -O too.) A dog of 10,000 events is
``esox bench``'s "repository get" workload, which
``benches/bench_application.py`` runs under pytest-benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import eventsourcing.application as es_application
import pytest

import esox
from esox.bench.es_models import Dog as EsDog
from esox.bench.models import Dog
from esox.persistence.replay import replay_aggregate

GROUP = "replay"


def saved_dog(app: Any, dog_cls: Any, n_events: int) -> Any:
    """Save a dog with ``n_events`` events in ``app``; return its id."""
    dog = dog_cls("Fido")
    for i in range(n_events - 1):
        dog.add_trick(f"trick {i}")
    app.save(dog)
    return dog.id


def sqlite_env(tmp_path: Path, name: str) -> dict[str, str]:
    return {"SQLITE_DBNAME": str(tmp_path / f"{name}.db")}


@pytest.fixture(params=["memory", "sqlite file"])
def persistence(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


@pytest.fixture(params=[10], ids=["10 events"])
def n_events(request: pytest.FixtureRequest) -> Iterator[int]:
    yield request.param


def esox_app(persistence: str, tmp_path: Path) -> esox.Application[Any]:
    env = {"PERSISTENCE_MODULE": "esox.memory"}
    if persistence == "sqlite file":
        env = {"PERSISTENCE_MODULE": "esox.sqlite", **sqlite_env(tmp_path, "esox")}
    return esox.Application(env=env)


def es_app(persistence: str, tmp_path: Path) -> Any:
    env = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if persistence == "sqlite file":
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            **sqlite_env(tmp_path, "eventsourcing"),
        }
    return es_application.Application(env=env)


@pytest.mark.benchmark(group=GROUP)
def test_replay_esox(
    benchmark: Any, persistence: str, n_events: int, tmp_path: Path
) -> None:
    app = esox_app(persistence, tmp_path)
    dog_id = saved_dog(app, Dog, n_events)
    dog = benchmark(replay_aggregate, app.events, dog_id)
    assert dog.version == n_events
    assert dog == app.repository.get(dog_id)


@pytest.mark.benchmark(group=GROUP)
def test_replay_eventsourcing(
    benchmark: Any, persistence: str, n_events: int, tmp_path: Path
) -> None:
    app = es_app(persistence, tmp_path)
    dog_id = saved_dog(app, EsDog, n_events)
    dog = benchmark(app.repository.get, dog_id)
    assert dog.version == n_events
