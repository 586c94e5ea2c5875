"""Concurrent writers: esox against eventsourcing 9.x, in one run.

Run: pytest benches/bench_concurrent.py --benchmark-only, then benches/report.py.
The workloads are ``esox bench``'s own (``esox.bench.workloads.concurrent``)
at 4,000 events: four writer processes (PostgreSQL and one SQLite file) or
four writer threads sharing one recorder (PostgreSQL) insert batches of 10
at once; the timed block starts them together and ends when the last is
done. After every block, the notification ids must be exactly 1..4,000 (the
no-skip guarantee), or the benchmark fails. PostgreSQL is skipped if
unreachable.
"""

from __future__ import annotations

from typing import Any

import pytest

from esox.bench.harness import Workload
from esox.bench.workloads.concurrent import workloads
from support import bench_side, each_workload, workloads_at

SCALE = 4_000
WRITES = workloads_at(workloads, SCALE, family="concurrent insert")
GROUP = f"concurrent insert ({SCALE:,} events, 4 writers)"


@pytest.mark.benchmark(group=GROUP)
@each_workload(WRITES)
def test_concurrent_insert_esox(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "esox")


@pytest.mark.benchmark(group=GROUP)
@each_workload(WRITES)
def test_concurrent_insert_eventsourcing(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "eventsourcing")
