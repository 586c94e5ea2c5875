"""Latency of one command (get a dog, add a trick, save it): esox against
eventsourcing 9.x, and the sqlite3 floor of the same database work.

Run: pytest benches/bench_latency.py --benchmark-only, then benches/report.py.
Each round is one command on a dog of its own (10 events), as ``esox bench``
runs them (``esox.bench.latency``); p50, p99 and p99.9 go in ``extra_info``.
On SQLite, ``_limit`` is the floor: select the dog's rows, insert one row,
commit, with sqlite3.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from esox.bench.latency import QUANTILES, app_command, latency_kinds, sqlite_floor
from esox.bench.plan import eventsourcing_installed
from esox.bench.workloads.storage import Fresh, Kind
from support import plan_at

COMMANDS = 2_000
PLAN = plan_at(COMMANDS)
KINDS = latency_kinds(PLAN)
GROUP = "command latency (get, trigger one event, save)"


@pytest.fixture
def fresh() -> Iterator[Fresh]:
    resources = Fresh()
    yield resources
    resources.release()


def bench_commands(benchmark: Any, command: Any, kind: Kind) -> None:
    rounds = COMMANDS if kind.synchronous != "FULL" else COMMANDS // 10
    counter = itertools.count()
    benchmark.pedantic(command, setup=lambda: ((next(counter),), {}), rounds=rounds - 1)
    if not benchmark.stats:  # --benchmark-disable
        return
    data = sorted(benchmark.stats.stats.data)
    for name, q in QUANTILES.items():
        value = data[min(int(q * (len(data) - 1)), len(data) - 1)]
        benchmark.extra_info[f"{name}_us"] = round(value * 1e6, 1)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_command_esox(benchmark: Any, kind: Kind, fresh: Fresh) -> None:
    bench_commands(benchmark, app_command("esox", kind, PLAN, fresh, COMMANDS), kind)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_command_eventsourcing(benchmark: Any, kind: Kind, fresh: Fresh) -> None:
    if not eventsourcing_installed():
        pytest.skip("eventsourcing is not installed")
    command = app_command("eventsourcing", kind, PLAN, fresh, COMMANDS)
    bench_commands(benchmark, command, kind)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_command_limit(benchmark: Any, kind: Kind, fresh: Fresh) -> None:
    if kind.store != "sqlite":
        pytest.skip("no floor in memory")
    bench_commands(benchmark, sqlite_floor(kind, PLAN, fresh, COMMANDS), kind)
