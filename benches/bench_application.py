"""Applications: esox against eventsourcing 9.x, the same application code.

Run: pytest benches/bench_application.py --benchmark-only, then benches/report.py.
The workloads are ``esox bench``'s own (``esox.bench.workloads.application``):
saving 1,000 new aggregates 100 per save (memory, SQLite FULL and NORMAL,
PostgreSQL); getting a dog of 10,000 events from the repository (replayed,
from a snapshot, from the cache); and 1,000 events through a follower
(SingleThreadedRunner, Items -> Copier). Each group has an ``_esox`` and an
``_eventsourcing`` member.
"""

from __future__ import annotations

from typing import Any

import pytest

from esox.bench.harness import Workload
from esox.bench.workloads.application import workloads
from support import bench_side, each_workload, workloads_at

SAVES = workloads_at(workloads, 1_000, family="application save")
GETS = workloads_at(workloads, 10_000, family="repository get")
FOLLOWERS = workloads_at(workloads, 1_000, family="follower processing")


SAVE = "application save (1,000 aggregates, 100 per save)"
GET = "repository get (10,000 events)"
FOLLOW = "follower processing (1,000 events)"


@pytest.mark.benchmark(group=SAVE)
@each_workload(SAVES)
def test_save_esox(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "esox")


@pytest.mark.benchmark(group=SAVE)
@each_workload(SAVES)
def test_save_eventsourcing(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "eventsourcing")


@pytest.mark.benchmark(group=GET)
@each_workload(GETS)
def test_repository_get_esox(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "esox")


@pytest.mark.benchmark(group=GET)
@each_workload(GETS)
def test_repository_get_eventsourcing(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "eventsourcing")


@pytest.mark.benchmark(group=FOLLOW)
@each_workload(FOLLOWERS)
def test_follower_esox(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "esox")


@pytest.mark.benchmark(group=FOLLOW)
@each_workload(FOLLOWERS)
def test_follower_eventsourcing(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "eventsourcing")
