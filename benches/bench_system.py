"""A system end to end: esox's runners against eventsourcing 9.x's, same system.

Run: pytest benches/bench_system.py --benchmark-only
The system is ``Items -> Copier``: the leader records one event per command,
the follower (a process application) records one event per event it
processes, with its tracking position, in one transaction. A round issues
``N_EVENTS`` events to the running system (``BATCH`` per command) and waits
until the follower has processed them all, each in its own transaction as
both libraries do: events per second are in ``extra_info`` and printed.

- multi-threaded runner, an SQLite file per application (both libraries);
- PostgreSQL: esox's MultiProcessRunner (the follower in its own process,
  woken by LISTEN/NOTIFY) against eventsourcing's MultiThreadedRunner (it
  has no multi-process runner), a schema each.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import eventsourcing.system as es_system
import pytest
from tests.persistence_envs import POSTGRES, postgres_schema

from esox.bench.es_models import Copier as EsCopier
from esox.bench.es_models import Items as EsItems
from esox.bench.es_models import system as es_system_def
from esox.bench.models import Copier, Items, system
from esox.system import (
    MultiProcessRunner,
    MultiThreadedRunner,
)

N_EVENTS = 1000
BATCH = 10  # events per command: the follower's work dominates
ROUNDS = 3


def sqlite_env(tmp_path: Path, prefix: str) -> dict[str, str]:
    env = {"PERSISTENCE_MODULE": prefix + ".sqlite"}
    for name in ("ITEMS", "COPIER"):
        env[f"{name}_SQLITE_DBNAME"] = str(tmp_path / f"{prefix}-{name}.db")
    return env


@pytest.fixture
def pg_schema() -> Iterator[str]:
    with postgres_schema() as schema:
        yield schema


def run_rounds(benchmark: Any, items: Any, copier: Any) -> None:
    """Issue N_EVENTS commands, then wait for the follower: per round."""
    counter = iter(range(10**9))

    def one_round() -> None:
        for _ in range(N_EVENTS // BATCH):
            items.create([f"item {next(counter)}" for _ in range(BATCH)])
        target = items.recorder.max_notification_id()
        deadline = time.monotonic() + 120
        while (copier.recorder.max_tracking_id("Items") or 0) < target:
            if time.monotonic() > deadline:
                msg = f"follower stuck at {copier.recorder.max_tracking_id('Items')}"
                raise TimeoutError(msg)
            time.sleep(0.005)  # the same polling for both libraries

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    per_second = N_EVENTS / benchmark.stats.stats.mean
    benchmark.extra_info["events_per_second"] = round(per_second)
    print(f"\n{benchmark.name}: {per_second:,.0f} upstream events per second")


GROUP_SQLITE = f"system: {N_EVENTS} events through a follower, threads, SQLite"
GROUP_PG = f"system: {N_EVENTS} events through a follower, PostgreSQL"


@pytest.mark.benchmark(group=GROUP_SQLITE)
def test_system_sqlite_threads_esox(benchmark: Any, tmp_path: Path) -> None:
    with MultiThreadedRunner(system, env=sqlite_env(tmp_path, "esox")) as runner:
        run_rounds(benchmark, runner.get(Items), runner.get(Copier))


@pytest.mark.benchmark(group=GROUP_SQLITE)
def test_system_sqlite_threads_eventsourcing(benchmark: Any, tmp_path: Path) -> None:
    runner = es_system.MultiThreadedRunner(
        es_system_def, env=sqlite_env(tmp_path, "eventsourcing")
    )
    runner.start()
    try:
        run_rounds(benchmark, runner.get(EsItems), runner.get(EsCopier))
    finally:
        runner.stop()


@pytest.mark.benchmark(group=GROUP_PG)
def test_system_postgres_processes_esox(benchmark: Any, pg_schema: str) -> None:
    env = {"PERSISTENCE_MODULE": "esox.postgres", "POSTGRES_SCHEMA": pg_schema}
    with MultiProcessRunner(system, env=env | POSTGRES, poll_interval=1.0) as runner:
        run_rounds(benchmark, runner.get(Items), runner.get(Copier))


@pytest.mark.benchmark(group=GROUP_PG)
def test_system_postgres_threads_eventsourcing(benchmark: Any, pg_schema: str) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_SCHEMA": pg_schema}
    runner = es_system.MultiThreadedRunner(es_system_def, env=env | POSTGRES)
    runner.start()
    try:
        run_rounds(benchmark, runner.get(EsItems), runner.get(EsCopier))
    finally:
        runner.stop()
